package plans

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/tunplan/tunplan/modules/protocol"
)

// udp is svc with protocol = "udp" on line 18 and the lines after it (a probe block from line 19).
func udp(lines ...string) string {
	return svc(append([]string{`protocol = "udp"`}, lines...)...)
}

// probeBlock is a probe block with the attribute lines given, as svc adds it (its own lines
// indented by 4).
func probeBlock(attrs ...string) string {
	return "probe {\n    " + strings.Join(attrs, "\n    ") + "\n  }"
}

func TestProbeDiagnostics(t *testing.T) {
	long := strings.Repeat("x", protocol.MaxProbePayload+1)
	cases := []struct {
		name, src, summary, detail, pos string
	}{
		{"probe on a TCP service", base + svc(probeBlock(`send = "x"`)),
			"Probe block on a TCP service", `Remove the probe block, or set protocol = "udp" if "web" is a UDP service.`, "18:3"},
		{"probe on an explicit TCP service", base + svc(`protocol = "tcp"`, probeBlock(`send = "x"`)),
			"Probe block on a TCP service", "a probe block is for UDP services", "19:3"},
		{"two probe blocks", base + udp(probeBlock(`send = "x"`)+"\n  "+probeBlock(`send = "y"`)),
			"Duplicate probe block", `virtual_service "web" already has a probe block at test.hcl:19,3-8`, "22:3"},
		{"no send", base + udp(probeBlock(`expect = "x"`)),
			`Missing required attribute "send"`, `send = "<text>" or send_hex = "<hex>"`, "19:3"},
		{"empty probe block", base + udp("probe {}"),
			`Missing required attribute "send"`, "such as a DNS query", "19:3"},
		{"send and send_hex", base + udp(probeBlock(`send     = "x"`, `send_hex = "78"`)),
			"Conflicting probe attributes", "send and send_hex both give the datagram's payload (send is at test.hcl:20,5-9): keep one, send for text or send_hex for binary data.", "21:5"},
		{"expect_hex before expect", base + udp(probeBlock(`send       = "x"`, `expect_hex = "78"`, `expect     = "x"`)),
			"Conflicting probe attributes", "expect and expect_hex both give the bytes the reply must start with (expect_hex is at test.hcl:21,5-15)", "22:5"},
		{"not hex", base + udp(probeBlock(`send_hex = "7g"`)),
			"Invalid hex", `send_hex is not hexadecimal: 'g' is not a hex digit. Write the bytes as pairs of hex digits`, "20:16"},
		{"odd hex digits", base + udp(probeBlock(`send       = "x"`, `expect_hex = "74 7"`)),
			"Invalid hex", "expect_hex is not hexadecimal: it has an odd number of digits", "21:18"},
		{"send too large", base + udp(probeBlock(fmt.Sprintf("send = %q", long))),
			"Probe payload too large", "send is 1401 bytes; a probe carries at most 1400", "20:12"},
		{"expect_hex too large", base + udp(probeBlock(`send = "x"`, fmt.Sprintf("expect_hex = %q", strings.Repeat("00", protocol.MaxProbePayload+1)))),
			"Probe payload too large", "expect_hex is 1401 bytes", "21:18"},
		{"empty send", base + udp(probeBlock(`send = ""`)),
			"Empty probe payload", "send is empty: a probe sends a datagram the service answers", "20:12"},
		{"empty send_hex", base + udp(probeBlock(`send_hex = " "`)),
			"Empty probe payload", "send_hex is empty", "20:16"},
		{"send not a string", base + udp(probeBlock(`send = ["x"]`)),
			"Incorrect attribute value type", "string required", "20:12"},
		{"misspelt attribute", base + udp(probeBlock(`sned = "x"`)),
			"Unsupported argument", `Did you mean "send"?`, "20:5"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantError(t, c.src, nil, c.summary, c.detail, c.pos) })
	}
}

// A protocol in error says nothing more about the probe block; an unknown one still has its probe
// checked.
func TestProbeDiagnosticsFollowTheProtocol(t *testing.T) {
	_, _, diags := Load("test.hcl", []byte(base+svc(`protocol = 17`, probeBlock(`send = "x"`))), nil)
	if len(diags) != 1 || diags[0].Summary != "Unknown protocol" {
		t.Errorf("protocol = 17: %v", diags)
	}
	_, _, diags = Load("test.hcl", []byte(base+svc(`protocol = ["udp"]`, probeBlock(`send = "x"`))), nil)
	if len(diags) != 1 || diags[0].Summary != "Incorrect attribute value type" {
		t.Errorf(`protocol = ["udp"]: %v`, diags)
	}
	_, _, diags = Load("test.hcl", []byte(base+svc(`protocol = "sctp"`, probeBlock(`send_hex = "zz"`))), nil)
	if len(diags) != 2 || diags[0].Summary != "Unknown protocol" || diags[1].Summary != "Invalid hex" {
		t.Errorf(`protocol = "sctp": %v`, diags)
	}
}

const probePlan = `host "d1" {
  role    = "director"
  address = "198.18.0.1"
}
host "r1" {
  role    = "realserver"
  address = "198.18.1.1"
}
virtual_service "web" {
  vip       = "198.18.48.10"
  port      = 80
  directors = ["d1"]
  realserver "r1" {}
}
virtual_service "dns" {
  vip       = "198.18.48.10"
  protocol  = "udp"
  port      = 53
  directors = ["d1"]
  realserver "r1" {}
  probe {
    # A DNS query for example.com, type A.
    send_hex = <<-EOT
      7470 0100 0001 0000 0000 0000
      07 6578616d706c65 03 636f6d 00 0001 0001
    EOT
    expect_hex = "7470"
  }
}
virtual_service "echo" {
  vip       = "198.18.48.10"
  protocol  = "udp"
  port      = 7
  directors = ["d1"]
  realserver "r1" {}
  dynamic "probe" {
    for_each = ["ping"]
    content {
      send   = "${probe.value}\n"
      expect = probe.value
    }
  }
}
virtual_service "syslog" {
  vip       = "198.18.48.10"
  protocol  = "udp"
  port      = 514
  directors = ["d1"]
  realserver "r1" {}
}
`

// Probes are by service, only for the UDP services with a probe block, with text, hex (over lines,
// spaces between the bytes) and dynamic blocks; the desired state does not carry them: with or
// without probe blocks, every host's state is the same.
func TestProbes(t *testing.T) {
	p, _, diags := Load("test.hcl", []byte(probePlan), nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	vip := p.Services[0].VIP
	got := p.Probes()
	want := map[protocol.Key]protocol.Payload{
		{Protocol: "udp", Address: vip, Port: 53}: {Send: "\x74\x70\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01", Expect: "\x74\x70"},
		{Protocol: "udp", Address: vip, Port: 7}:  {Send: "ping\n", Expect: "ping"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Probes:\n %v\nwant\n %v", got, want)
	}
	without := stripBlocks(probePlan)
	q, _, diags := Load("test.hcl", []byte(without), nil)
	if diags.HasErrors() {
		t.Fatalf("%v\n%s", diags, without)
	}
	if len(q.Probes()) != 0 {
		t.Errorf("a plan without probe blocks has probes %v", q.Probes())
	}
	a, _ := json.Marshal(p.Desired())
	b, _ := json.Marshal(q.Desired())
	if string(a) != string(b) {
		t.Errorf("probe blocks changed the desired state:\n%s\n%s", a, b)
	}
	// Limit keeps every service's probe.
	l, _ := p.Limit([]string{"r1"})
	if len(l.Probes()) != 2 {
		t.Errorf("limited: %v", l.Probes())
	}
}

// stripBlocks removes the probe blocks (static and dynamic) from a plan.
func stripBlocks(src string) string {
	var out []string
	depth := 0
	for _, line := range strings.Split(src, "\n") {
		trim := strings.TrimSpace(line)
		if depth == 0 && (strings.HasPrefix(trim, "probe {") || strings.HasPrefix(trim, `dynamic "probe" {`)) {
			depth = 1
			continue
		}
		if depth > 0 {
			depth += strings.Count(line, "{") - strings.Count(line, "}")
			continue
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}
