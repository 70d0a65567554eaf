package imports

import (
	"reflect"
	"strings"
	"testing"

	"github.com/tunplan/tunplan/modules/protocol"
)

func TestUnplannable(t *testing.T) {
	ok := protocol.Service{Protocol: "tcp", Address: ipAddr("198.18.48.180"), Port: 80, Scheduler: "rr", Destinations: []protocol.Destination{tunDest("198.18.1.5", 80, 1)}}
	cases := []struct {
		name   string
		change func(*protocol.Service)
		want   string
	}{
		{"plannable", func(*protocol.Service) {}, ""},
		{"port 0", func(s *protocol.Service) { s.Port = 0 }, "a port-0 (every port) service"},
		{"multicast VIP", func(s *protocol.Service) { s.Address = ipAddr("224.0.0.1") }, "its VIP is not a unicast address"},
		{"unknown scheduler", func(s *protocol.Service) { s.Scheduler = "twos" }, `scheduler "twos" is not one a plan may name (rr wrr`},
		{"no destinations", func(s *protocol.Service) { s.Destinations = nil }, "no destinations"},
		{"mapped port", func(s *protocol.Service) { s.Destinations[0].Port = 8080 }, "destination 198.18.1.5:8080 has port 8080; in tunnel mode the realserver receives the service port 80"},
		{"weight", func(s *protocol.Service) { s.Destinations[0].Weight = 70000 }, "destination 198.18.1.5:80 has weight 70000; a plan's weights go from 0 to 65535"},
	}
	for _, c := range cases {
		s := ok
		s.Destinations = append([]protocol.Destination(nil), ok.Destinations...)
		c.change(&s)
		if got := unplannable(s); c.want == "" && got != "" || !strings.HasPrefix(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// A service is named after its protocol and port when no other has both, else after its VIP and
// port, and its protocol too when the VIP and port have both.
func TestServiceNames(t *testing.T) {
	key := func(proto, vip string, port uint16) protocol.Key {
		return protocol.Key{Protocol: proto, Address: ipAddr(vip), Port: port}
	}
	keys := []protocol.Key{
		key("tcp", "198.18.48.180", 443),
		key("tcp", "198.18.48.180", 80), key("tcp", "198.18.48.181", 80),
		key("udp", "198.18.48.190", 53), key("udp", "198.18.48.191", 53), key("tcp", "198.18.48.191", 53),
	}
	want := map[protocol.Key]string{
		keys[0]: "tcp-443",
		keys[1]: "svc-198.18.48.180-80", keys[2]: "svc-198.18.48.181-80",
		keys[3]: "svc-198.18.48.190-53", keys[4]: "svc-198.18.48.191-53-udp", keys[5]: "tcp-53",
	}
	if got := serviceNames(keys); !reflect.DeepEqual(got, want) {
		t.Errorf("names %v\nwant %v", got, want)
	}
}
