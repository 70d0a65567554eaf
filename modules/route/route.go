// Package route asks the kernel which route it would use to reach an address, as `ip route get`
// does, for `tunplan verify` to say whether a realserver's replies can leave towards the director.
// It only reads.
package route

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
)

// Kind is what the kernel does with packets to the address.
type Kind string

const (
	Unicast     Kind = "unicast"     // sent out of a device (directly or via a gateway)
	Local       Kind = "local"       // the address is this host's
	Blackhole   Kind = "blackhole"   // dropped silently (ip route add blackhole …)
	Unreachable Kind = "unreachable" // dropped with "host unreachable" (ip route add unreachable …)
	Prohibit    Kind = "prohibit"    // dropped with "administratively prohibited" (ip route add prohibit …)
	None        Kind = "none"        // no route matches: "network unreachable"
)

// Route is the kernel's answer for one address.
type Route struct {
	Kind    Kind
	Device  string
	Gateway netip.Addr
	Source  netip.Addr
}

// Forwards tells whether packets to the address leave (or stay on) this host.
func (r Route) Forwards() bool { return r.Kind == Unicast || r.Kind == Local }

// String renders the route as `ip route get` does, without the destination: "via 198.18.10.254
// dev eth0 src 198.18.10.182", "local dev lo", "blackhole".
func (r Route) String() string {
	var f []string
	switch r.Kind {
	case Unicast:
	case Local:
		f = append(f, "local")
	default:
		return string(r.Kind)
	}
	if r.Gateway.IsValid() {
		f = append(f, "via", r.Gateway.String())
	}
	if r.Device != "" {
		f = append(f, "dev", r.Device)
	}
	if r.Source.IsValid() {
		f = append(f, "src", r.Source.String())
	}
	return strings.Join(f, " ")
}

// Kernel is the boundary to the kernel's routing decision.
type Kernel interface {
	Get(dst netip.Addr) (Route, error)
}

// Netlink asks the kernel over rtnetlink (RTM_GETROUTE). The kernel answers a lookup that ends on a
// blackhole, unreachable or prohibit route, or on none, with an error rather than a route: EINVAL,
// EHOSTUNREACH, EACCES and ENETUNREACH (what `ip route get` prints as "Invalid argument", "No route
// to host", "Permission denied", "Network is unreachable"); those become the route's Kind.
type Netlink struct{}

// rtnLocal is RTN_LOCAL (linux/rtnetlink.h), spelled out so the package builds on every platform.
const rtnLocal = 2

func (Netlink) Get(dst netip.Addr) (Route, error) {
	routes, err := netlink.RouteGet(dst.AsSlice())
	for errno, kind := range map[syscall.Errno]Kind{syscall.EINVAL: Blackhole, syscall.EHOSTUNREACH: Unreachable, syscall.EACCES: Prohibit, syscall.ENETUNREACH: None} {
		if errors.Is(err, errno) {
			return Route{Kind: kind}, nil
		}
	}
	if err != nil {
		return Route{}, fmt.Errorf("route: get %s: %w", dst, err)
	}
	if len(routes) == 0 {
		return Route{Kind: None}, nil
	}
	r := routes[0]
	out := Route{Kind: Unicast}
	if r.Type == rtnLocal {
		out.Kind = Local
	}
	if gw, ok := netip.AddrFromSlice(r.Gw); ok {
		out.Gateway = gw.Unmap()
	}
	if src, ok := netip.AddrFromSlice(r.Src); ok {
		out.Source = src.Unmap()
	}
	if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
		out.Device = l.Attrs().Name
	}
	return out, nil
}
