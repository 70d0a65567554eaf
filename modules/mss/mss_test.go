package mss

import (
	"errors"
	"net"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/protocol"
)

// fakeRoutes is a main routing table as the kernel keeps it: RouteChange replaces the first route
// of the same table, destination, TOS and metric (and never adds one), and refuses the flags the
// kernel refuses in a request.
type fakeRoutes struct {
	routes  []netlink.Route
	changes []netlink.Route // every request, as sent
	failOn  int             // fail the failOn-th RouteChange (1-based)
}

func (f *fakeRoutes) RouteList(_ netlink.Link, family int) ([]netlink.Route, error) {
	var out []netlink.Route
	for _, r := range f.routes {
		if r.Table == unix.RT_TABLE_MAIN && (family == netlink.FAMILY_ALL || r.Family == family) {
			out = append(out, clone(r))
		}
	}
	return out, nil
}

func (f *fakeRoutes) RouteChange(r *netlink.Route) error {
	f.changes = append(f.changes, clone(*r))
	if f.failOn == len(f.changes) {
		return errors.New("fake: route change refused")
	}
	if r.Flags&(unix.RTNH_F_DEAD|unix.RTNH_F_LINKDOWN) != 0 {
		return syscall.EINVAL
	}
	for _, nh := range r.MultiPath {
		if nh.Flags&(unix.RTNH_F_DEAD|unix.RTNH_F_LINKDOWN) != 0 {
			return syscall.EINVAL
		}
	}
	ones, _ := r.Dst.Mask.Size()
	for i, o := range f.routes {
		oones, _ := o.Dst.Mask.Size()
		if o.Table == r.Table && oones == ones && o.Dst.IP.Equal(r.Dst.IP) && o.Tos == r.Tos && o.Priority == r.Priority {
			nr := clone(*r)
			nr.Family = netlink.FAMILY_V4
			f.routes[i] = nr
			return nil
		}
	}
	return syscall.ENOENT
}

func clone(r netlink.Route) netlink.Route {
	c := r
	c.MultiPath = nil
	for _, nh := range r.MultiPath {
		n := *nh
		c.MultiPath = append(c.MultiPath, &n)
	}
	return c
}

func defaultNet() *net.IPNet { return &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)} }

// gateway is a default route as DHCP leaves it: via a gateway, with a source, a protocol, a
// metric and an MTU of its own, all of which must survive a change of its advmss.
func gateway(metric int, gw string) netlink.Route {
	return netlink.Route{Family: netlink.FAMILY_V4, Table: unix.RT_TABLE_MAIN, Type: unix.RTN_UNICAST, Dst: defaultNet(),
		Gw: net.ParseIP(gw).To4(), LinkIndex: 2, Src: net.ParseIP("198.18.1.183").To4(), Protocol: unix.RTPROT_DHCP,
		Priority: metric, MTU: 1500, MTULock: true, InitCwnd: 10, Flags: unix.RTNH_F_ONLINK}
}

func connected() netlink.Route {
	_, n, _ := net.ParseCIDR("198.18.1.0/24")
	return netlink.Route{Family: netlink.FAMILY_V4, Table: unix.RT_TABLE_MAIN, Type: unix.RTN_UNICAST, Dst: n, LinkIndex: 2,
		Scope: netlink.SCOPE_LINK, Protocol: unix.RTPROT_KERNEL}
}

func run(t *testing.T, steps []change.Step) error {
	t.Helper()
	for _, s := range steps {
		if err := s.Do(); err != nil {
			return err
		}
	}
	return nil
}

func facts(t *testing.T, k Kernel) protocol.RouteMSS {
	t.Helper()
	got, err := Facts(k, []string{protocol.DefaultRoute})
	if err != nil || len(got) != 1 {
		t.Fatalf("facts: %v %v", got, err)
	}
	return got[0]
}

// TestSetKeepsTheRoute: the advmss is set and removed on the default route through a change of
// that route alone, and everything else about it (gateway, device, source, protocol, metric, other
// metrics, onlink) stays; the connected route is not touched.
func TestSetKeepsTheRoute(t *testing.T) {
	f := &fakeRoutes{routes: []netlink.Route{connected(), gateway(100, "198.18.1.254")}}
	before := clone(f.routes[1])
	if got := facts(t, f); got != (protocol.RouteMSS{Dst: "default"}) {
		t.Fatalf("facts before: %+v", got)
	}
	steps := Diff(f, []protocol.RouteMSS{{Dst: "default", AdvMSS: 1440}}, []protocol.RouteMSS{facts(t, f)})
	if cs := change.Changes(steps); len(cs) != 1 || cs[0] != (change.Change{Module: "mss", Address: "route default advmss", Action: change.Update, Before: "0", After: "1440"}) {
		t.Fatalf("changes: %+v", cs)
	}
	if err := run(t, steps); err != nil {
		t.Fatal(err)
	}
	want := clone(before)
	want.AdvMSS = 1440
	if !reflect.DeepEqual(f.routes[1], want) {
		t.Errorf("route after the change:\n got %+v\nwant %+v", f.routes[1], want)
	}
	if !reflect.DeepEqual(f.routes[0], connected()) || len(f.changes) != 1 {
		t.Errorf("%d changes; connected route %+v", len(f.changes), f.routes[0])
	}
	if got := facts(t, f); got.AdvMSS != 1440 || got.Mixed || got.Missing {
		t.Errorf("facts after: %+v", got)
	}
	if steps := Diff(f, []protocol.RouteMSS{{Dst: "default", AdvMSS: 1440}}, []protocol.RouteMSS{facts(t, f)}); len(steps) != 0 {
		t.Errorf("a matching route still has changes: %+v", change.Changes(steps))
	}

	// No longer wanted: the metric is removed, the route stays as it was.
	steps = Diff(f, nil, []protocol.RouteMSS{facts(t, f)})
	if cs := change.Changes(steps); len(cs) != 1 || cs[0].Action != change.Delete || cs[0].Before != "1440" || cs[0].Shown() != "1440" {
		t.Fatalf("changes: %+v", cs)
	}
	if err := run(t, steps); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.routes[1], before) {
		t.Errorf("route after removing the advmss:\n got %+v\nwant %+v", f.routes[1], before)
	}
	// A snapshot's 0 (no metric) where there is none, and an owned route whose advmss is 0: nothing.
	if steps := Diff(f, []protocol.RouteMSS{{Dst: "default"}}, []protocol.RouteMSS{facts(t, f)}); len(steps) != 0 {
		t.Errorf("0 over 0: %+v", change.Changes(steps))
	}
	if steps := Diff(f, nil, []protocol.RouteMSS{facts(t, f)}); len(steps) != 0 {
		t.Errorf("released 0: %+v", change.Changes(steps))
	}
}

// TestNoDefaultRoute: a wanted advmss without a default route is a change that fails, saying why;
// no route is added. A snapshot that had no route, or an advmss of 0, asks for nothing.
func TestNoDefaultRoute(t *testing.T) {
	f := &fakeRoutes{routes: []netlink.Route{connected()}}
	cur := facts(t, f)
	if cur != (protocol.RouteMSS{Dst: "default", Missing: true}) {
		t.Fatalf("facts: %+v", cur)
	}
	steps := Diff(f, []protocol.RouteMSS{{Dst: "default", AdvMSS: 1440}}, []protocol.RouteMSS{cur})
	if cs := change.Changes(steps); len(cs) != 1 || cs[0].Shown() != "none (no default route) => 1440" {
		t.Fatalf("changes: %+v", cs)
	}
	err := run(t, steps)
	if err == nil || !strings.Contains(err.Error(), "mss: no IPv4 default route in the main table to set advmss 1440 on") {
		t.Errorf("error: %v", err)
	}
	if len(f.changes) != 0 || len(f.routes) != 1 {
		t.Errorf("routes were changed: %+v", f.routes)
	}
	for _, w := range []protocol.RouteMSS{{Dst: "default", Missing: true}, {Dst: "default"}} {
		if steps := Diff(f, []protocol.RouteMSS{w}, []protocol.RouteMSS{cur}); len(steps) != 0 {
			t.Errorf("want %+v: %+v", w, change.Changes(steps))
		}
	}
	if err := Set(f, 0); err != nil {
		t.Errorf("removing an advmss with no route: %v", err)
	}
}

// TestSeveralDefaultRoutes: every unicast default route of the main table gets the advmss; routes
// that disagree are Mixed (and differ from any wanted value); a blackhole default and a default of
// another table are left alone.
func TestSeveralDefaultRoutes(t *testing.T) {
	backup := gateway(200, "198.18.1.253")
	backup.AdvMSS = 1400
	blackhole := netlink.Route{Family: netlink.FAMILY_V4, Table: unix.RT_TABLE_MAIN, Type: unix.RTN_BLACKHOLE, Dst: defaultNet(), Priority: 300}
	other := gateway(100, "198.18.1.252")
	other.Table = 100
	f := &fakeRoutes{routes: []netlink.Route{backup, gateway(100, "198.18.1.254"), blackhole, other}}
	cur := facts(t, f)
	if cur != (protocol.RouteMSS{Dst: "default", AdvMSS: 0, Mixed: true}) {
		t.Fatalf("facts: %+v (want the metric-100 route's 0, mixed)", cur)
	}
	steps := Diff(f, []protocol.RouteMSS{{Dst: "default", AdvMSS: 0}}, []protocol.RouteMSS{cur})
	if cs := change.Changes(steps); len(cs) != 1 || cs[0].Shown() != "0 (not on every default route) => 0" {
		t.Fatalf("changes: %+v", cs)
	}
	if err := Set(f, 1440); err != nil {
		t.Fatal(err)
	}
	if f.routes[0].AdvMSS != 1440 || f.routes[1].AdvMSS != 1440 || f.routes[2].AdvMSS != 0 || f.routes[3].AdvMSS != 0 || len(f.changes) != 2 {
		t.Errorf("routes: %+v (%d changes)", f.routes, len(f.changes))
	}
	if got := facts(t, f); got != (protocol.RouteMSS{Dst: "default", AdvMSS: 1440}) {
		t.Errorf("facts after: %+v", got)
	}
}

// TestSharedMetric: two default routes of one metric (ip route append) are refused: the kernel
// would replace the first of them, whichever was meant.
func TestSharedMetric(t *testing.T) {
	f := &fakeRoutes{routes: []netlink.Route{gateway(100, "198.18.1.254"), gateway(100, "198.18.1.253")}}
	err := Set(f, 1440)
	if err == nil || !strings.Contains(err.Error(), "share metric 100") || len(f.changes) != 0 {
		t.Errorf("error %v, %d changes", err, len(f.changes))
	}
}

// TestKernelFlagsAreNotSentBack: the flags the kernel reports of a route whose device has no
// carrier (linkdown), which it refuses in a request, are dropped; onlink, the route's own, stays.
func TestKernelFlagsAreNotSentBack(t *testing.T) {
	r := gateway(100, "198.18.1.254")
	r.Flags |= unix.RTNH_F_LINKDOWN
	mp := netlink.Route{Family: netlink.FAMILY_V4, Table: unix.RT_TABLE_MAIN, Type: unix.RTN_UNICAST, Dst: defaultNet(), Priority: 200,
		MultiPath: []*netlink.NexthopInfo{{LinkIndex: 2, Gw: net.ParseIP("198.18.1.254").To4(), Flags: unix.RTNH_F_LINKDOWN | unix.RTNH_F_ONLINK},
			{LinkIndex: 3, Gw: net.ParseIP("198.18.2.254").To4(), Hops: 1}}}
	f := &fakeRoutes{routes: []netlink.Route{r, mp}}
	if err := Set(f, 1440); err != nil {
		t.Fatal(err)
	}
	if f.changes[0].Flags != unix.RTNH_F_ONLINK || f.changes[1].MultiPath[0].Flags != unix.RTNH_F_ONLINK || len(f.changes[1].MultiPath) != 2 {
		t.Errorf("sent %+v and %+v", f.changes[0], f.changes[1])
	}
	if mp.MultiPath[0].Flags&unix.RTNH_F_LINKDOWN == 0 {
		t.Errorf("the listed route was changed in place")
	}
}

// TestChangeFails: a refused change is an error naming the route; a route only the default route
// in scope is known.
func TestChangeFails(t *testing.T) {
	f := &fakeRoutes{routes: []netlink.Route{gateway(100, "198.18.1.254")}, failOn: 1}
	if err := Set(f, 1440); err == nil || !strings.Contains(err.Error(), "mss: set advmss 1440 on the default route default via 198.18.1.254") {
		t.Errorf("error: %v", err)
	}
	if _, err := Facts(f, []string{"198.18.0.0/16"}); err == nil {
		t.Errorf("a route other than default was read")
	}
}
