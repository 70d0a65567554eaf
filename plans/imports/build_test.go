package imports

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tunplan/tunplan/modules/protocol"
	"github.com/tunplan/tunplan/plans"
)

var (
	ipAddr   = netip.MustParseAddr
	ipPrefix = netip.MustParsePrefix
)

// defaultSSH is what the command passes without SSH flags.
var defaultSSH = SSH{User: DefaultUser, Port: DefaultPort, KnownHosts: DefaultKnownHosts}

func tunDest(ip string, port uint16, w uint32) protocol.Destination {
	return protocol.Destination{Address: ipAddr(ip), Port: port, Weight: w, Forward: protocol.ForwardTunnel}
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, ipAddr(s))
	}
	return out
}

// web is a weighted TCP service with a destination no host below has (198.18.20.5).
func web() protocol.Service {
	return protocol.Service{Protocol: "tcp", Address: ipAddr("198.18.48.180"), Port: 80, Scheduler: "wrr", Destinations: []protocol.Destination{
		tunDest("198.18.10.182", 80, 1), tunDest("198.18.1.183", 80, 3), tunDest("198.18.20.5", 80, 0),
	}}
}

// twoDirectors are two directors carrying web (one also a persistent UDP service and one that maps
// ports), two realservers it uses, one that no service uses.
func twoDirectors() []Host {
	dns := protocol.Service{Protocol: "udp", Address: ipAddr("198.18.48.190"), Port: 53, Scheduler: "sh", Persistence: 300, Destinations: []protocol.Destination{
		tunDest("198.18.1.183", 53, 1), tunDest("198.18.10.182", 53, 2),
	}}
	mapped := protocol.Service{Protocol: "tcp", Address: ipAddr("198.18.48.200"), Port: 8080, Scheduler: "rr", Destinations: []protocol.Destination{tunDest("198.18.1.183", 80, 1)}}
	return []Host{
		{Name: "lvs01", SSHAddress: "198.19.0.11", Director: true, Inventory: &protocol.Inventory{
			Services:        []protocol.Service{web(), dns, mapped},
			Skipped:         []string{"fwmark 3: a firewall-mark service"},
			TunnelAddresses: []netip.Prefix{ipPrefix("198.18.48.180/32"), ipPrefix("198.18.48.190/32")},
			Addresses:       addrs("198.19.0.11", "198.18.48.181"),
		}},
		{Name: "lvs02", SSHAddress: "lvs02.example.com", Director: true, Inventory: &protocol.Inventory{
			Services:        []protocol.Service{web()},
			TunnelAddresses: []netip.Prefix{ipPrefix("198.18.48.180/32")},
			Addresses:       addrs("198.18.48.180", "198.19.0.12", "198.18.48.182"),
		}},
		{Name: "web1", SSHAddress: "198.19.0.21", Inventory: &protocol.Inventory{
			TunnelAddresses: []netip.Prefix{ipPrefix("198.18.48.180/32"), ipPrefix("198.18.48.190/32")},
			Addresses:       addrs("198.19.0.21", "198.18.1.183"),
		}},
		{Name: "web2", SSHAddress: "198.18.10.182", Inventory: &protocol.Inventory{
			TunnelAddresses: []netip.Prefix{ipPrefix("198.18.48.180/32")},
			Addresses:       addrs("198.18.10.182"),
		}},
		{Name: "spare", SSHAddress: "198.19.0.23", Inventory: &protocol.Inventory{Addresses: addrs("198.19.0.23")}},
	}
}

// load builds and checks the plan, failing the test on an error.
func load(t *testing.T, hosts []Host, ssh SSH) (*Plan, *plans.Plan, []string) {
	t.Helper()
	p, notes, err := Build(hosts, ssh)
	if err != nil {
		t.Fatalf("Build: %v (notes %q)", err, notes)
	}
	loaded, _, diags, err := p.Check("test.hcl")
	if err != nil {
		t.Fatalf("Check: %v\n%v\n%s", err, diags, p.HCL())
	}
	return p, loaded, notes
}

func TestBuild(t *testing.T) {
	hosts := twoDirectors()
	p, loaded, notes := load(t, hosts, defaultSSH)

	type got struct {
		roles   string
		address string
		ssh     string
	}
	want := map[string]got{
		"lvs01":          {"director", "198.19.0.11", "198.19.0.11"},       // its SSH address
		"lvs02":          {"director", "198.19.0.12", "lvs02.example.com"}, // its first address that is no VIP
		"web1":           {"realserver", "198.18.1.183", "198.19.0.21"},    // the destination, not its SSH address
		"web2":           {"realserver", "198.18.10.182", "198.18.10.182"}, //
		"rs-198-18-20-5": {"realserver", "198.18.20.5", "198.18.20.5"},     // made for a destination
	}
	var names []string
	for _, h := range loaded.Hosts {
		names = append(names, h.Name)
		if g := (got{h.Roles.String(), h.Address.String(), h.Target().Address}); g != want[h.Name] {
			t.Errorf("%s: %+v, want %+v", h.Name, g, want[h.Name])
		}
	}
	if len(names) != len(want) {
		t.Errorf("hosts %v, want those of %v", names, want)
	}
	var services []string
	for _, s := range loaded.Services {
		services = append(services, s.Name+" "+strings.Join(s.Directors, ","))
	}
	if want := []string{"tcp-80 lvs01,lvs02", "udp-53 lvs01"}; !reflect.DeepEqual(services, want) {
		t.Errorf("services %q, want %q", services, want)
	}
	// The order the directors list destinations in does not matter; weights and persistence stay.
	desired := loaded.Desired()
	if got := desired["lvs02"].Services; len(got) != 1 || got[0].Destinations[0] != tunDest("198.18.1.183", 80, 3) {
		t.Errorf("lvs02 carries %+v", got)
	}
	if got := desired["lvs01"].Services; len(got) != 2 || got[1].Persistence != 300 {
		t.Errorf("lvs01 carries %+v", got)
	}

	wantNotes := []string{
		"lvs01: skipped fwmark 3: a firewall-mark service",
		"lvs01: skipped tcp/198.18.48.200:8080: destination 198.18.1.183:80 has port 80; in tunnel mode the realserver receives the service port 8080, so a plan cannot map ports",
		"rs-198-18-20-5: destination 198.18.20.5 is no address of the hosts read: the plan reaches it over SSH at that address; its tunl0 was not read (give it with --realserver to read it, or to name it)",
		"spare: left out of the plan: no imported service tunnels to it (none of its addresses [198.19.0.23] is a destination)",
		`web2: has no 198.18.48.190/32 on tunl0, which virtual_service "udp-53" needs there: applying the plan adds it`,
	}
	if !reflect.DeepEqual(notes, wantNotes) {
		t.Errorf("notes\n%q\nwant\n%q", notes, wantNotes)
	}
	src := string(p.HCL())
	for _, want := range []string{
		"# Written by tunplan import from the live IPVS table of lvs01, lvs02.\n# Left out (tunplan does not manage them and leaves them alone):\n#   lvs01: fwmark 3: a firewall-mark service\n",
		"realserver \"web2\" {}\n",
		"realserver \"rs-198-18-20-5\" {\n    weight = 0\n  }\n",
	} {
		if !strings.Contains(src, want) {
			t.Errorf("plan lacks %q:\n%s", want, src)
		}
	}
	if strings.Contains(src, "ssh {\n  user") {
		t.Errorf("the default SSH settings make an ssh block:\n%s", src)
	}
	// Build changes no inventory it was given.
	if !reflect.DeepEqual(hosts, twoDirectors()) {
		t.Error("Build changed its input")
	}
}

// A director that is also a realserver is one host with both roles at the destination's address;
// a VIP that is a host's SSH address or a destination is left out; a made host's name that is
// taken gets a suffix.
func TestBuildDirectorAlsoRealserver(t *testing.T) {
	hosts := []Host{
		{Name: "lvs01", SSHAddress: "lvs01.example.com", Director: true, Inventory: &protocol.Inventory{
			Services: []protocol.Service{
				{Protocol: "tcp", Address: ipAddr("198.18.48.180"), Port: 443, Scheduler: "wlc", Destinations: []protocol.Destination{tunDest("198.18.48.181", 443, 1), tunDest("198.18.1.5", 443, 1)}},
				{Protocol: "tcp", Address: ipAddr("198.19.0.21"), Port: 80, Scheduler: "rr", Destinations: []protocol.Destination{tunDest("198.18.1.5", 80, 1)}},
				{Protocol: "udp", Address: ipAddr("198.18.1.5"), Port: 53, Scheduler: "rr", Destinations: []protocol.Destination{tunDest("198.18.48.181", 53, 1)}},
			},
			TunnelAddresses: []netip.Prefix{ipPrefix("198.18.48.180/32")},
			Addresses:       addrs("198.19.0.11", "198.18.48.181"),
		}},
		{Name: "rs-198-18-1-5", SSHAddress: "198.19.0.21", Inventory: &protocol.Inventory{Addresses: addrs("198.19.0.21")}},
	}
	_, loaded, notes := load(t, hosts, defaultSSH)
	var got []string
	for _, h := range loaded.Hosts {
		got = append(got, h.Name+" "+h.Roles.String()+" "+h.Address.String())
	}
	if want := []string{"lvs01 director+realserver 198.18.48.181", "rs-198-18-1-5-2 realserver 198.18.1.5"}; !reflect.DeepEqual(got, want) {
		t.Errorf("hosts %q, want %q", got, want)
	}
	for _, want := range []string{
		"lvs01: skipped tcp/198.19.0.21:80: its VIP is the SSH address of host rs-198-18-1-5; a plan keeps them apart",
		"lvs01: skipped udp/198.18.1.5:53: its VIP is also a destination (a realserver's address); a plan keeps them apart",
		"rs-198-18-1-5: left out of the plan",
	} {
		if !slices.ContainsFunc(notes, func(n string) bool { return strings.HasPrefix(n, want) }) {
			t.Errorf("notes lack %q: %q", want, notes)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	cases := []struct {
		name   string
		change func([]Host) []Host
		want   string
	}{
		{"directors disagree", func(hs []Host) []Host {
			s := web()
			s.Scheduler, s.Persistence, s.Destinations = "rr", 60, s.Destinations[:2]
			hs[1].Inventory.Services = []protocol.Service{s}
			return hs
		}, "service tcp/198.18.48.180:80 differs between directors lvs01 and lvs02 (scheduler wrr vs rr; persistence 0 vs 60; destinations [198.18.1.183:80 weight 3, 198.18.10.182:80 weight 1, 198.18.20.5:80 weight 0] vs [198.18.1.183:80 weight 3, 198.18.10.182:80 weight 1]): a virtual_service is the same on all its directors"},
		{"nothing to import", func(hs []Host) []Host { return hs[2:] }, "nothing to import: no director carries"},
		{"a destination on two hosts", func(hs []Host) []Host {
			hs[4].Inventory.Addresses = addrs("198.18.1.183")
			return hs
		}, "service tcp/198.18.48.180:80: destination 198.18.1.183 is an address of both web1 and spare"},
		{"two destinations on one host", func(hs []Host) []Host {
			hs[2].Inventory.Addresses = append(hs[2].Inventory.Addresses, ipAddr("198.18.20.5"))
			return hs
		}, "service tcp/198.18.48.180:80: host web1 is the destination of both 198.18.1.183 and 198.18.20.5"},
		{"a director without an address", func(hs []Host) []Host {
			hs[1].Inventory.Addresses = addrs("198.18.48.180", "198.18.48.190") // VIPs only
			return hs
		}, "director lvs02 has no IPv4 address of its own to put in the plan"},
		{"no inventory", func(hs []Host) []Host {
			hs[3].Inventory = nil
			return hs
		}, `host "web2": each host needs a unique name and its inventory`},
		{"a name twice", func(hs []Host) []Host {
			hs[3].Name = "web1"
			return hs
		}, `host "web1": each host needs a unique name`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, _, err := Build(c.change(twoDirectors()), defaultSSH)
			if err == nil || !strings.Contains(err.Error(), c.want) || p != nil {
				t.Errorf("plan %v, error %v\nwant %q", p != nil, err, c.want)
			}
		})
	}
}

// The notes of a failed Build still say what was left out.
func TestBuildNotesOnError(t *testing.T) {
	hosts := twoDirectors()[:1]
	hosts[0].Inventory.Services = hosts[0].Inventory.Services[2:]
	_, notes, err := Build(hosts, defaultSSH)
	if err == nil || len(notes) != 2 || !strings.Contains(notes[1], "cannot map ports") {
		t.Errorf("error %v, notes %q", err, notes)
	}
}
