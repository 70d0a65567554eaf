package mss

import (
	"fmt"
	"net"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunplan/tunplan/modules/internal/netnstest"
	"github.com/tunplan/tunplan/modules/protocol"
)

// TestNetlinkAdvMSS sets and removes the advmss of a real kernel's default route, in a network
// namespace of its own, through *netlink.Handle as the helper does: the route keeps its gateway,
// device, source, protocol, metric and other metrics, and no route is added.
func TestNetlinkAdvMSS(t *testing.T) {
	netnstest.Run(t, func(link netlink.Link) (string, error) { return advmss(t, link) })
}

// advmss runs in the namespace, on its device d0; it returns why the kernel cannot be tested, or what stopped the
// test.
func advmss(t *testing.T, link netlink.Link) (string, error) {
	src := net.IPv4(198, 18, 10, 182).To4() // d0's address
	route := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: net.IPv4(198, 18, 10, 254).To4(), Src: src, Protocol: unix.RTPROT_DHCP,
		Priority: 100, MTU: 1480, InitCwnd: 10}
	if err := netlink.RouteAdd(route); err != nil {
		return "", err
	}
	k := &netlink.Handle{}
	// only lists the routes and the one default route.
	only := func() ([]netlink.Route, netlink.Route, error) {
		routes, err := k.RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			return nil, netlink.Route{}, err
		}
		var found []netlink.Route
		for _, r := range routes {
			if isDefault(r) {
				found = append(found, r)
			}
		}
		if len(found) != 1 {
			return nil, netlink.Route{}, fmt.Errorf("%d default routes: %+v", len(found), routes)
		}
		return routes, found[0], nil
	}
	before, orig, err := only()
	if err != nil {
		return "", err
	}
	if orig.AdvMSS != 0 || orig.MTU != 1480 || orig.InitCwnd != 10 {
		return "", fmt.Errorf("the route as added: %+v", orig)
	}

	for _, n := range []uint32{1440, 1400, 0} {
		cur, err := Facts(k, []string{"default"})
		if err != nil {
			return "", err
		}
		steps := Diff(k, []protocol.RouteMSS{{Dst: "default", AdvMSS: n}}, cur)
		if len(steps) != 1 {
			return "", fmt.Errorf("advmss %d: %d steps", n, len(steps))
		}
		if err := steps[0].Do(); err != nil {
			return "", fmt.Errorf("advmss %d: %w", n, err)
		}
		after, got, err := only()
		if err != nil {
			return "", err
		}
		if len(after) != len(before) {
			t.Errorf("advmss %d: %d routes, had %d", n, len(after), len(before))
		}
		if got.AdvMSS != int(n) {
			t.Errorf("advmss %d: the route has %d", n, got.AdvMSS)
		}
		got.AdvMSS = 0
		if !sameRoute(got, orig) || got.Priority != orig.Priority || got.MTU != orig.MTU || got.InitCwnd != orig.InitCwnd || got.Table != orig.Table {
			t.Errorf("advmss %d: the route changed:\n got %+v\nwant %+v", n, got, orig)
		}
		if f, err := Facts(k, []string{"default"}); err != nil || f[0] != (protocol.RouteMSS{Dst: "default", AdvMSS: n}) {
			t.Errorf("advmss %d: facts %+v (%v)", n, f, err)
		}
	}

	// A second, multipath default route of a higher metric: both get the advmss, each keeps its
	// paths and their weights.
	multipath := &netlink.Route{Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, Priority: 200, MultiPath: []*netlink.NexthopInfo{
		{LinkIndex: link.Attrs().Index, Gw: net.IPv4(198, 18, 10, 253).To4(), Hops: 0},
		{LinkIndex: link.Attrs().Index, Gw: net.IPv4(198, 18, 10, 252).To4(), Hops: 2},
	}}
	if err := netlink.RouteAdd(multipath); err != nil {
		return "", err
	}
	list := func() ([]netlink.Route, error) {
		_, all, err := defaults(k)
		return all, err
	}
	two, err := list()
	if err != nil || len(two) != 2 {
		return "", fmt.Errorf("default routes %+v (%v)", two, err)
	}
	for _, n := range []uint32{1440, 0} {
		if err := Set(k, n); err != nil {
			return "", fmt.Errorf("advmss %d on two routes: %w", n, err)
		}
		got, err := list()
		if err != nil || len(got) != 2 {
			return "", fmt.Errorf("default routes %+v (%v)", got, err)
		}
		for i := range got {
			if got[i].AdvMSS != int(n) || !sameRoute(got[i], two[i]) || got[i].Priority != two[i].Priority {
				t.Errorf("advmss %d: default route %d is %+v, was %+v", n, i, got[i], two[i])
			}
		}
	}
	if err := netlink.RouteDel(multipath); err != nil {
		return "", err
	}

	if err := netlink.RouteDel(route); err != nil {
		return "", err
	}
	if err := Set(k, 1440); err == nil {
		t.Errorf("no default route, and no error")
	}
	if f, err := Facts(k, []string{"default"}); err != nil || !f[0].Missing {
		t.Errorf("no default route: facts %+v (%v)", f, err)
	}
	return "", nil
}
