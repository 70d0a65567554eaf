package route

import (
	"net"
	"net/netip"
	"testing"

	"github.com/tunplan/tunplan/modules/internal/netnstest"
	"github.com/vishvananda/netlink"
)

// TestNetlinkKinds asks a real kernel, in a network namespace of its own, about a reachable
// address and about addresses behind blackhole, unreachable and prohibit routes and none.
func TestNetlinkKinds(t *testing.T) {
	netnstest.Run(t, func(d0 netlink.Link) (string, error) { return kinds(t, d0) })
}

// kinds sets up a namespace's routes and checks what Get says of them; it returns why the kernel
// cannot be tested (a skip), or a failed set-up.
func kinds(t *testing.T, link netlink.Link) (string, error) {
	gw := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: net.IPv4(198, 18, 10, 254)}
	for _, step := range []func() error{
		func() error { return netlink.RouteAdd(gw) },
		func() error {
			for ip, typ := range map[string]int{"198.18.48.181": 6, "198.18.48.182": 7, "198.18.48.183": 8} { // RTN_BLACKHOLE, RTN_UNREACHABLE, RTN_PROHIBIT
				if err := netlink.RouteAdd(&netlink.Route{Dst: &net.IPNet{IP: net.ParseIP(ip), Mask: net.CIDRMask(32, 32)}, Type: typ}); err != nil {
					return err
				}
			}
			return nil
		},
	} {
		if err := step(); err != nil {
			return "", err
		}
	}
	for dst, want := range map[string]string{
		"198.18.48.100": "via 198.18.10.254 dev d0 src 198.18.10.182",
		"198.18.10.182": "local dev lo src 198.18.10.182",
		"198.18.48.181": "blackhole",
		"198.18.48.182": "unreachable",
		"198.18.48.183": "prohibit",
	} {
		r, err := Netlink{}.Get(netip.MustParseAddr(dst))
		if err != nil || r.String() != want {
			t.Errorf("%s: %q (%v), want %q", dst, r, err, want)
		}
		if r.Forwards() != (r.Kind == Unicast || r.Kind == Local) {
			t.Errorf("%s: forwards %v", dst, r.Forwards())
		}
	}
	if err := netlink.RouteDel(gw); err != nil {
		return "", err
	}
	if r, err := (Netlink{}).Get(netip.MustParseAddr("203.0.113.1")); err != nil || r.Kind != None {
		t.Errorf("no default route: %v, %v", r, err)
	}
	return "", nil
}
