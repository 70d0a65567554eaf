package host

import (
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/tunplan/tunplan/modules/protocol"
	"github.com/tunplan/tunplan/modules/route"
	"github.com/tunplan/tunplan/modules/sockets"
)

// fakeSockets is a host's listening sockets and the programs that hold them.
type fakeSockets struct {
	tcp, udp []sockets.Socket
	programs map[uint64]string
	err      error
	reads    int
}

func (f *fakeSockets) Listening(proto string) ([]sockets.Socket, error) {
	f.reads++
	if proto == "udp" {
		return f.udp, f.err
	}
	return f.tcp, f.err
}

func (f *fakeSockets) Programs(inodes []uint64) (map[uint64]string, error) {
	out := map[uint64]string{}
	for _, n := range inodes {
		if p, ok := f.programs[n]; ok {
			out[n] = p
		}
	}
	return out, nil
}

// fakeRoutes answers every lookup with one route, and records the addresses asked for.
type fakeRoutes struct {
	route route.Route
	asked []netip.Addr
}

func (f *fakeRoutes) Get(dst netip.Addr) (route.Route, error) {
	f.asked = append(f.asked, dst)
	return f.route, nil
}

var directorIP = netip.MustParseAddr("198.18.48.181")

func sock(addrPort string, inode uint64) sockets.Socket {
	ap := netip.MustParseAddrPort(addrPort)
	return sockets.Socket{Local: ap, V6: ap.Addr().Is6(), Inode: inode}
}

// healthyRealserver is beijing after tunplan's apply, with nginx on 0.0.0.0:80 and sshd on the
// management address.
func healthyRealserver(t *testing.T) (*Engine, *fakeKernel, *fakeSockets, *fakeRoutes) {
	f := newFake()
	f.modules["ipip"] = true
	f.links["lo"] = &fakeLink{up: true, addrs: []string{"127.0.0.1/8"}}
	f.links["eth0"] = &fakeLink{up: true, addrs: []string{"198.18.10.182/24"}}
	f.links["tunl0"] = &fakeLink{up: true, addrs: []string{"198.18.48.180/32"}}
	for k, v := range map[string]string{"all.rp_filter": "0", "tunl0.rp_filter": "0", "all.arp_ignore": "1", "all.arp_announce": "2"} {
		f.sysctls["net.ipv4.conf."+k] = v
	}
	s := &fakeSockets{
		tcp:      []sockets.Socket{sock("198.19.0.22:22", 10), sock("0.0.0.0:80", 20)},
		programs: map[uint64]string{10: "sshd", 20: "nginx", 21: "nginx", 30: "unbound"},
	}
	r := &fakeRoutes{route: route.Route{Kind: route.Unicast, Device: "eth0", Gateway: netip.MustParseAddr("198.18.10.254"), Source: rip2}}
	e := newEngine(t, f)
	e.Sockets, e.Routes = s, r
	return e, f, s, r
}

func explainWeb(t *testing.T, e *Engine) []protocol.Fact {
	t.Helper()
	resp := mustHandle(t, e, protocol.Request{Op: protocol.OpExplain, Host: "beijing", Explain: []protocol.Path{{Protocol: "tcp", VIP: vip, Port: 80, Director: directorIP}}})
	if len(resp.Facts) != 1 || resp.Facts[0].Path.VIP != vip {
		t.Fatalf("facts %+v", resp.Facts)
	}
	return resp.Facts[0].Facts
}

func firstFailing(facts []protocol.Fact) *protocol.Fact {
	for i := range facts {
		if !facts[i].OK {
			return &facts[i]
		}
	}
	return nil
}

// TestExplainHealthyRealserver: every fact holds, in the order that decides a request's fate, each
// with what was read; nothing is changed, no generation or lock is written.
func TestExplainHealthyRealserver(t *testing.T) {
	e, f, _, r := healthyRealserver(t)
	before, calls := f.dump(), f.calls
	facts := explainWeb(t, e)
	want := []string{
		"ipip loaded: loaded",
		"tunl0 up: up",
		"VIP on tunl0: 198.18.48.180/32",
		"rp_filter for tunl0: 0 (net.ipv4.conf.all.rp_filter=0, net.ipv4.conf.tunl0.rp_filter=0)",
		"listening on VIP:port: nginx listens on 0.0.0.0:80",
		"route to the director: via 198.18.10.254 dev eth0 src 198.18.10.182",
		"arp: arp_ignore=1, arp_announce=2 (net.ipv4.conf.all): the VIP is kept out of ARP",
	}
	var got []string
	for _, fc := range facts {
		got = append(got, fc.Name+": "+fc.Value)
		if !fc.OK || fc.Cause != "" {
			t.Errorf("%s: ok %v cause %q", fc.Name, fc.OK, fc.Cause)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("facts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(r.asked) != 1 || r.asked[0] != directorIP {
		t.Errorf("route looked up for %v, want the director's address", r.asked)
	}
	if f.dump() != before || f.calls != calls {
		t.Errorf("explain changed the host:\n%s", f.dump())
	}
	if _, err := os.Stat(e.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("explain wrote state (a generation, the lock): %v", err)
	}
}

// TestExplainNamesTheFirstFailingFact: each fault the issue lists, and a few more, makes exactly the
// fact that decides it the first failing one, with the cause verify prints.
func TestExplainNamesTheFirstFailingFact(t *testing.T) {
	cases := []struct {
		name  string
		fault func(*fakeKernel, *fakeSockets, *fakeRoutes)
		fact  string // the first failing fact, "" for none
		cause string
		value string // the fact's value, when it matters
	}{
		{"nginx rebound to the RIP", func(_ *fakeKernel, s *fakeSockets, _ *fakeRoutes) {
			s.tcp = []sockets.Socket{sock("198.19.0.22:22", 10), sock("198.18.10.182:80", 20)}
		}, FactListen, "nothing listens on 198.18.48.180:80 (nginx listens on 198.18.10.182:80 only)", "nginx listens on 198.18.10.182:80 only"},
		{"nginx on the RIP and the loopback", func(_ *fakeKernel, s *fakeSockets, _ *fakeRoutes) {
			s.tcp = []sockets.Socket{sock("198.18.10.182:80", 20), sock("127.0.0.1:80", 21), sock("198.18.1.1:80", 99)}
		}, FactListen, "nothing listens on 198.18.48.180:80 (nginx listens on 198.18.10.182:80 and 127.0.0.1:80 only; a program this helper cannot see listens on 198.18.1.1:80 only)", ""},
		{"nginx stopped", func(_ *fakeKernel, s *fakeSockets, _ *fakeRoutes) {
			s.tcp = []sockets.Socket{sock("198.19.0.22:22", 10)}
		}, FactListen, "nothing listens on 198.18.48.180:80 (nor on any other address on port 80)", "nothing listens on port 80"},
		{"sockets unreadable", func(_ *fakeKernel, s *fakeSockets, _ *fakeRoutes) { s.err = errors.New("permission denied") },
			FactListen, "could not read the tcp sockets: permission denied", "unknown"},
		{"rp_filter=1 on all", func(f *fakeKernel, _ *fakeSockets, _ *fakeRoutes) { f.sysctls["net.ipv4.conf.all.rp_filter"] = "1" },
			FactRPFilter, "rp_filter for tunl0 is 1 (net.ipv4.conf.all.rp_filter=1): the decapsulated request is dropped", ""},
		{"rp_filter=1 on tunl0", func(f *fakeKernel, _ *fakeSockets, _ *fakeRoutes) { f.sysctls["net.ipv4.conf.tunl0.rp_filter"] = "1" },
			FactRPFilter, "rp_filter for tunl0 is 1 (net.ipv4.conf.tunl0.rp_filter=1): the decapsulated request is dropped", ""},
		{"loose rp_filter passes", func(f *fakeKernel, _ *fakeSockets, _ *fakeRoutes) {
			f.sysctls["net.ipv4.conf.all.rp_filter"], f.sysctls["net.ipv4.conf.tunl0.rp_filter"] = "1", "2"
		}, "", "", ""},
		{"VIP removed from tunl0", func(f *fakeKernel, _ *fakeSockets, _ *fakeRoutes) { f.links["tunl0"].addrs = nil },
			FactVIP, "198.18.48.180 is not on tunl0: the decapsulated request is for an address this host does not have, and is dropped", "absent"},
		{"VIP on lo instead", func(f *fakeKernel, _ *fakeSockets, _ *fakeRoutes) {
			f.links["tunl0"].addrs, f.links["lo"].addrs = nil, []string{"127.0.0.1/8", "198.18.48.180/32"}
		}, "", "", ""},
		{"tunl0 down", func(f *fakeKernel, _ *fakeSockets, _ *fakeRoutes) { f.links["tunl0"].up = false },
			FactTunnel, "tunl0 is down: the director's IPIP packets are not decapsulated (ip link set tunl0 up)", "down"},
		{"ipip not loaded", func(f *fakeKernel, _ *fakeSockets, _ *fakeRoutes) {
			delete(f.modules, "ipip")
			delete(f.links, "tunl0")
			delete(f.sysctls, "net.ipv4.conf.tunl0.rp_filter")
		}, FactIPIP, "ipip is not loaded: nothing decapsulates the director's IPIP packets (modprobe ipip)", "not loaded"},
		{"return route blackholed", func(_ *fakeKernel, _ *fakeSockets, r *fakeRoutes) { r.route = route.Route{Kind: route.Blackhole} },
			FactRoute, "the route back to the director (198.18.48.181) is a blackhole route: the replies are dropped", "blackhole"},
		{"no route back", func(_ *fakeKernel, _ *fakeSockets, r *fakeRoutes) { r.route = route.Route{Kind: route.None} },
			FactRoute, "the route back to the director (198.18.48.181) does not exist: the replies are dropped", ""},
		{"nginx on :: (IPv6 and IPv4)", func(_ *fakeKernel, s *fakeSockets, _ *fakeRoutes) { s.tcp = []sockets.Socket{sock("[::]:80", 20)} }, "", "", ""},
		{"nginx on the VIP", func(_ *fakeKernel, s *fakeSockets, _ *fakeRoutes) {
			s.tcp = []sockets.Socket{sock("198.18.48.180:80", 20)}
		}, "", "", ""},
		{"ARP not hidden is no cause", func(f *fakeKernel, _ *fakeSockets, _ *fakeRoutes) {
			f.sysctls["net.ipv4.conf.all.arp_ignore"], f.sysctls["net.ipv4.conf.all.arp_announce"] = "0", "0"
		}, "", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, f, s, r := healthyRealserver(t)
			c.fault(f, s, r)
			facts := explainWeb(t, e)
			if len(facts) != 7 {
				t.Fatalf("%d facts, want 7 (every fact is read)", len(facts))
			}
			first := firstFailing(facts)
			switch {
			case c.fact == "" && first != nil:
				t.Errorf("failing fact %+v, want none", *first)
			case c.fact == "":
			case first == nil:
				t.Errorf("no failing fact, want %s", c.fact)
			case first.Name != c.fact || first.Cause != c.cause || (c.value != "" && first.Value != c.value):
				t.Errorf("first failing fact %q value %q cause\n  %q\nwant %q value %q cause\n  %q", first.Name, first.Value, first.Cause, c.fact, c.value, c.cause)
			}
		})
	}
}

// TestExplainUDPAndManyPaths: a UDP path looks for a bound socket; host-wide facts and the socket
// tables are read once per request however many paths ask.
func TestExplainUDPAndManyPaths(t *testing.T) {
	e, _, s, _ := healthyRealserver(t)
	s.udp = []sockets.Socket{sock("198.18.10.182:53", 30)}
	dns := protocol.Path{Protocol: "udp", VIP: vip, Port: 53, Director: directorIP}
	web := protocol.Path{Protocol: "tcp", VIP: vip, Port: 80, Director: directorIP}
	web443 := protocol.Path{Protocol: "tcp", VIP: vip, Port: 443, Director: directorIP}
	resp := mustHandle(t, e, protocol.Request{Op: protocol.OpExplain, Explain: []protocol.Path{dns, web, web443}})
	if len(resp.Facts) != 3 || resp.Facts[0].Path != dns || resp.Facts[1].Path != web || resp.Facts[2].Path != web443 {
		t.Fatalf("facts %+v", resp.Facts)
	}
	if f := firstFailing(resp.Facts[0].Facts); f == nil || f.Cause != "nothing is bound on 198.18.48.180:53 (unbound is bound on 198.18.10.182:53 only)" {
		t.Errorf("udp: %+v", f)
	}
	if f := firstFailing(resp.Facts[1].Facts); f != nil {
		t.Errorf("tcp/80: %+v", f)
	}
	if f := firstFailing(resp.Facts[2].Facts); f == nil || f.Cause != "nothing listens on 198.18.48.180:443 (nor on any other address on port 443)" {
		t.Errorf("tcp/443: %+v", f)
	}
	if s.reads != 2 {
		t.Errorf("socket tables read %d times, want once per protocol", s.reads)
	}
	if resp := e.Handle(protocol.Request{Op: protocol.OpExplain, Explain: []protocol.Path{{Protocol: "sctp", VIP: vip, Port: 80}}}); resp.Error == "" {
		t.Error("an sctp path was explained")
	}
	e.Sockets = nil
	if resp := e.Handle(protocol.Request{Op: protocol.OpExplain, Explain: []protocol.Path{web}}); !strings.Contains(resp.Error, "cannot read sockets") {
		t.Errorf("without a socket reader: %q", resp.Error)
	}
}
