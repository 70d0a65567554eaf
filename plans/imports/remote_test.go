package imports

import (
	"reflect"
	"strings"
	"testing"
	"unicode"

	"github.com/tunplan/tunplan/modules/protocol"
)

// evilReason is a reason for a skipped service that a compromised director could send: unescaped,
// it ends the plan's comment and adds a service the operator would apply to every host, and it
// drives a terminal (a window title, clearing the screen).
const evilReason = "x\nvirtual_service \"evil\" {\n  vip       = \"198.18.48.66\"\n  port      = 80\n  directors = [\"lvs01\"]\n\n  realserver \"web1\" {}\n}\n#\x1b]0;pwned\x07\x1b[2J\r\u2028\u0085"

// A skipped service's reason stays on its line of the plan's header comment, escaped: the plan
// parses to the services read and no other, and each line of it is printable.
func TestHCLEscapesSkippedReasons(t *testing.T) {
	hosts := twoDirectors()
	hosts[0].Inventory.Skipped = []string{evilReason}
	p, loaded, notes := load(t, hosts, defaultSSH)
	var services []string
	for _, s := range loaded.Services {
		services = append(services, s.Name)
	}
	if want := []string{"tcp-80", "udp-53"}; !reflect.DeepEqual(services, want) {
		t.Errorf("services %q, want %q", services, want)
	}
	src := string(p.HCL())
	line := `#   lvs01: x\nvirtual_service "evil" {\n  vip       = "198.18.48.66"\n  port      = 80\n  directors = ["lvs01"]\n\n  realserver "web1" {}\n}\n#\x1b]0;pwned\a\x1b[2J\r\u2028\u0085` + "\n"
	if !strings.Contains(src, line) {
		t.Errorf("plan lacks %q:\n%s", line, src)
	}
	for _, r := range strings.ReplaceAll(src, "\n", "") {
		if !unicode.IsPrint(r) {
			t.Errorf("the plan holds %U:\n%s", r, src)
		}
	}
	// The note keeps the reason as the host sent it: the command escapes what it prints.
	if notes[0] != "lvs01: skipped "+evilReason {
		t.Errorf("note %q", notes[0])
	}
}

// A realserver block's label is written as HCL quotes a string, as every other label is.
func TestHCLQuotesRealserverLabels(t *testing.T) {
	p, _, _ := load(t, twoDirectors(), defaultSSH)
	p.services[0].rs[1] = "a\"b\n${c}"
	src := string(p.HCL())
	if want := `realserver "a\"b\n$${c}" {}` + "\n"; !strings.Contains(src, want) {
		t.Errorf("plan lacks %q:\n%s", want, src)
	}
}

// Inspect reports only IPv4 TCP and UDP services whose destinations all forward by IPIP tunnel; a
// director that answers anything else is not believed, and its text does not reach the plan.
func TestBuildRefusesWhatInspectNeverReports(t *testing.T) {
	cases := []struct {
		name   string
		change func(*protocol.Service)
		want   string
	}{
		{"unknown protocol", func(s *protocol.Service) { s.Protocol = "sctp" }, `protocol "sctp"`},
		{"protocol with HCL", func(s *protocol.Service) { s.Protocol = "tcp\n}\n\x1b[2J" }, `protocol "tcp\n}\n\x1b[2J"`},
		{"firewall mark", func(s *protocol.Service) { s.FWMark = 3 }, "firewall mark 3"},
		{"IPv6 VIP", func(s *protocol.Service) { s.Address = ipAddr("2001:db8::80") }, "VIP 2001:db8::80"},
		{"IPv6 destination", func(s *protocol.Service) { s.Destinations[0].Address = ipAddr("2001:db8::5") }, "destination 2001:db8::5"},
		{"masquerading destination", func(s *protocol.Service) { s.Destinations[1].Forward = "masq" }, `destination 198.18.1.183 forwarding by "masq"`},
		{"GUE destination", func(s *protocol.Service) {
			s.Destinations[2].Tunnel = protocol.Tunnel{Type: protocol.TunnelGUE, Port: 6080}
		}, "destination 198.18.20.5 tunnelling by gue:6080"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hosts := twoDirectors()
			c.change(&hosts[0].Inventory.Services[0])
			p, _, err := Build(hosts, defaultSSH)
			if want := "lvs01: inspect answered a service with " + c.want + ";"; err == nil || !strings.HasPrefix(err.Error(), want) || p != nil {
				t.Errorf("plan %v, error %v\nwant %q", p != nil, err, want)
			}
		})
	}
}

// A host name becomes a block label: one that is no valid host name is refused.
func TestBuildRefusesInvalidHostNames(t *testing.T) {
	hosts := twoDirectors()
	hosts[2].Name = "web1\" {}\nhost \"x"
	p, _, err := Build(hosts, defaultSSH)
	if want := `host "web1\" {}\nhost \"x": not a valid host name`; err == nil || !strings.HasPrefix(err.Error(), want) || p != nil {
		t.Errorf("plan %v, error %v\nwant %q", p != nil, err, want)
	}
}
