package plans

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tunplan/tunplan/modules/protocol"
)

// block is a block of the kind with the attribute lines given, as svc adds it.
func block(kind string, attrs ...string) string {
	if len(attrs) == 0 {
		return kind + " {}"
	}
	return kind + " {\n    " + strings.Join(attrs, "\n    ") + "\n  }"
}

func TestTunnelDiagnostics(t *testing.T) {
	udpSvc := "virtual_service \"dns\" {\n  vip       = \"198.18.48.11\"\n  protocol  = \"udp\"\n  port      = 6080\n  directors = [\"d1\"]\n  realserver \"r1\" {}\n}\n"
	cases := []struct {
		name, src, summary, detail, pos string
	}{
		{"unknown tunnel", base + svc(`tunnel = "vxlan"`),
			"Unknown tunnel", `Tunnel "vxlan" is not one IPVS can do: use "ipip"`, "18:12"},
		{"misspelt tunnel", base + svc(`tunnel = "GUE"`),
			"Unknown tunnel", `(did you mean "gue"?)`, "18:12"},
		{"tunnel not a string", base + svc(`tunnel = ["gue"]`),
			"Incorrect attribute value type", "string required", "18:12"},
		{"gue without its block", base + svc(`tunnel = "gue"`),
			"Missing gue block", `add gue { port = 6080 } to virtual_service "web"`, "18:12"},
		{"gue block on an ipip service", base + svc(block("gue", "port = 6080")),
			"The gue block does not match the tunnel", `virtual_service "web" tunnels by ipip. Set tunnel = "gue" to use it, or remove the block.`, "18:3"},
		{"gre block on a gue service", base + svc(`tunnel = "gue"`, block("gue", "port = 6080"), block("gre")),
			"The gre block does not match the tunnel", "tunnels by gue", "22:3"},
		{"gue block on a gre service", base + svc(`tunnel = "gre"`, block("gue", "port = 6080")),
			"The gue block does not match the tunnel", "A gue block sets up a GUE tunnel", "19:3"},
		{"two gue blocks", base + svc(`tunnel = "gue"`, block("gue", "port = 6080")+"\n  "+block("gue", "port = 6081")),
			"Duplicate gue block", `virtual_service "web" already has a gue block at test.hcl:19,3-6`, "22:3"},
		{"gue without a port", base + svc(`tunnel = "gue"`, block("gue", "checksum = true")),
			`Missing required attribute "port"`, "A gue block needs port = <1..65535>", "19:3"},
		{"gue port 0", base + svc(`tunnel = "gue"`, block("gue", "port = 0")),
			"Invalid GUE port", "0 is not valid here: port must be a UDP port from 1 to 65535.", "20:12"},
		{"gue port too large", base + svc(`tunnel = "gue"`, block("gue", "port = 65536")),
			"Invalid GUE port", "65536 is not valid here", "20:12"},
		{"gue checksum not a bool", base + svc(`tunnel = "gue"`, block("gue", "port = 6080", `checksum = "yes"`)),
			"Incorrect attribute value type", `Inappropriate value for attribute "checksum": bool required.`, "21:16"},
		{"gue misspelt attribute", base + svc(`tunnel = "gue"`, block("gue", "port = 6080", "remote_checksun = true")),
			"Unsupported argument", `Did you mean "remote_checksum"?`, "21:5"},
		{"gre checksum", base + svc(`tunnel = "gre"`, block("gre", "checksum = true")),
			"GRE checksums are not supported", "whose kernel drops every GRE packet that carries a checksum", "20:16"},
		{"both gue checksums", base + svc(`tunnel = "gue"`, block("gue", "port = 6080", "checksum = true", "remote_checksum = true")),
			"Conflicting GUE checksums", "Set only one of checksum and remote_checksum to true.", "22:23"},
		{"gre with a port", base + svc(`tunnel = "gre"`, block("gre", "port = 6080")),
			"Unsupported argument", `An argument named "port" is not expected here.`, "20:5"},
		{"gue port of a udp service", base + svc(`tunnel = "gue"`, block("gue", "port = 6080")) + udpSvc,
			"GUE port is a UDP service port", `r1 also serves virtual_service "dns" on UDP port 6080 (test.hcl:23,1-22): its requests would be decapsulated instead of answered. Pick another GUE port.`, "20:12"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantError(t, c.src, nil, c.summary, c.detail, c.pos) })
	}
}

// A tunnel attribute in error says nothing about the blocks; every other problem is still reported.
func TestTunnelDiagnosticsAllAtOnce(t *testing.T) {
	_, _, diags := Load("test.hcl", []byte(base+svc(`tunnel = 4`, block("gue", "port = 0"), `scheduler = "nope"`)), nil)
	var got []string
	for _, d := range diags {
		got = append(got, d.Summary)
	}
	slices.Sort(got)
	if want := "Unknown scheduler,Unknown tunnel"; strings.Join(got, ",") != want {
		t.Errorf("got %q, want %s", got, want)
	}
}

const tunnelPlan = `host "d1" {
  role    = "director"
  address = "198.18.0.1"
}
host "r1" {
  role    = "realserver"
  address = "198.18.1.1"
}
host "r2" {
  role     = "realserver"
  address  = "198.18.1.2"
  hide_vip = false
}
virtual_service "web" {
  vip       = "198.18.48.10"
  port      = 80
  directors = ["d1"]
  realserver "r1" {}
  realserver "r2" {}
}
virtual_service "gue" {
  vip       = "198.18.48.11"
  port      = 80
  tunnel    = "gue"
  directors = ["d1"]
  realserver "r1" {}
  gue {
    port            = 6080
    checksum        = false
    remote_checksum = true
  }
}
virtual_service "gre" {
  vip       = "198.18.48.12"
  port      = 80
  tunnel    = "gre"
  directors = ["d1"]
  realserver "r1" {}
  realserver "r2" {}
  gre {
    checksum = false
  }
}
virtual_service "gre-plain" {
  vip       = "198.18.48.13"
  port      = 443
  tunnel    = "gre"
  directors = ["d1"]
  realserver "r2" {}
}
`

// Each tunnel type gives the director's destinations its tunnel, and the realservers its receiving
// side: IPIP and GUE on tunl0 (GUE also the fou module and a listener per port), GRE on gre0 with
// ip_gre, each device with rp_filter 0.
func TestTunnelDesired(t *testing.T) {
	p, _, diags := Load("test.hcl", []byte(tunnelPlan), nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	d := p.Desired()
	var tunnels []string
	for _, s := range d["d1"].Services {
		for _, dst := range s.Destinations {
			tunnels = append(tunnels, fmt.Sprintf("%s->%s %s", s.Key(), dst.Address, dst.Attrs()))
		}
	}
	want := []string{
		"tcp/198.18.48.10:80->198.18.1.1 weight=1 fwd=tunnel",
		"tcp/198.18.48.10:80->198.18.1.2 weight=1 fwd=tunnel",
		"tcp/198.18.48.11:80->198.18.1.1 weight=1 fwd=tunnel tun=gue:6080,remcsum",
		"tcp/198.18.48.12:80->198.18.1.1 weight=1 fwd=tunnel tun=gre",
		"tcp/198.18.48.12:80->198.18.1.2 weight=1 fwd=tunnel tun=gre",
		"tcp/198.18.48.13:443->198.18.1.2 weight=1 fwd=tunnel tun=gre",
	}
	if strings.Join(tunnels, "\n") != strings.Join(want, "\n") {
		t.Errorf("director's destinations:\n%s\nwant\n%s", strings.Join(tunnels, "\n"), strings.Join(want, "\n"))
	}
	if m := strings.Join(d["d1"].Modules, " "); m != "ip_vs ip_vs_wlc ipip" {
		t.Errorf("director's modules: %s (a director needs nothing for GUE or GRE)", m)
	}
	r1, _ := json.Marshal(d["r1"])
	if want := `{"modules":["fou","ip_gre","ipip"],` +
		`"sysctls":[{"key":"net.ipv4.conf.all.arp_announce","value":"2"},{"key":"net.ipv4.conf.all.arp_ignore","value":"1"},{"key":"net.ipv4.conf.all.rp_filter","value":"0"},{"key":"net.ipv4.conf.gre0.rp_filter","value":"0"},{"key":"net.ipv4.conf.tunl0.rp_filter","value":"0"}],` +
		`"links":[{"name":"gre0","addresses":["198.18.48.12/32"]},{"name":"tunl0","addresses":["198.18.48.10/32","198.18.48.11/32"]}],` +
		`"fou":[{"port":6080,"type":"gue"}]}`; string(r1) != want {
		t.Errorf("r1:\n%s\nwant\n%s", r1, want)
	}
	r2, _ := json.Marshal(d["r2"])
	if want := `{"modules":["ip_gre","ipip"],` +
		`"sysctls":[{"key":"net.ipv4.conf.all.rp_filter","value":"0"},{"key":"net.ipv4.conf.gre0.rp_filter","value":"0"},{"key":"net.ipv4.conf.tunl0.rp_filter","value":"0"}],` +
		`"links":[{"name":"gre0","addresses":["198.18.48.12/32","198.18.48.13/32"]},{"name":"tunl0","addresses":["198.18.48.10/32"]}]}`; string(r2) != want {
		t.Errorf("r2:\n%s\nwant\n%s", r2, want)
	}
	// tunnel = "ipip" is the default, written or not.
	q, _, diags := Load("test.hcl", []byte(strings.Replace(tunnelPlan, "  port      = 80\n  directors", "  port      = 80\n  tunnel    = \"ipip\"\n  directors", 1)), nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	a, _ := json.Marshal(p.Desired())
	b, _ := json.Marshal(q.Desired())
	if string(a) != string(b) {
		t.Errorf(`tunnel = "ipip" changed the desired state`)
	}
	if q.Services[0].Tunnel != (protocol.Tunnel{}) {
		t.Errorf(`tunnel = "ipip": %+v`, q.Services[0].Tunnel)
	}
}
