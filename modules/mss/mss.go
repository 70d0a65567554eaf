// Package mss owns the MSS a realserver advertises to the clients it answers directly: the advmss
// metric of its IPv4 default routes in the main table (`ip route change default … advmss 1440`),
// through rtnetlink (vishvananda/netlink).
//
// The kernel offers, in the SYN-ACK of a connection, the advmss of the route its reply takes, or
// that route's MTU less 40 when the route has none. A client then sends segments of up to that
// size, and the director wraps each in 20 more bytes of IPIP: with 1460 on a 1500-byte path, a
// full-size segment needs fragmentation. tunnel_mss lowers the advertised MSS so it fits.
//
// Only the metric is owned. A route is changed with NLM_F_REPLACE and without NLM_F_CREATE (`ip
// route change`), from the route as the kernel lists it with its advmss alone set anew, so its
// gateway, device, source, protocol, metric and other metrics stay; a route is never created or
// removed, and the SSH session, which may ride on the default route, is not disturbed.
package mss

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/protocol"
)

// Module names this module's changes.
const Module = "mss"

// Kernel is the rtnetlink boundary; *netlink.Handle implements it.
type Kernel interface {
	// RouteList lists the main table's routes of a family (link nil: of every device).
	RouteList(link netlink.Link, family int) ([]netlink.Route, error)
	// RouteChange replaces an existing route (NLM_F_REPLACE without NLM_F_CREATE): the kernel
	// finds it by table, destination, TOS and metric, and never adds one.
	RouteChange(route *netlink.Route) error
}

// Facts reads the advmss of each route in scope (only protocol.DefaultRoute is known). With no
// default route the entry is Missing; with several that disagree it is Mixed, with the value of
// the one of the lowest metric.
func Facts(k Kernel, scope []string) ([]protocol.RouteMSS, error) {
	var out []protocol.RouteMSS
	for _, dst := range scope {
		if dst != protocol.DefaultRoute {
			return nil, fmt.Errorf("mss: route %q: only the %q route is managed", dst, protocol.DefaultRoute)
		}
		routes, _, err := defaults(k)
		if err != nil {
			return nil, err
		}
		r := protocol.RouteMSS{Dst: dst, Missing: len(routes) == 0}
		for i, rt := range routes {
			if i == 0 {
				r.AdvMSS = uint32(rt.AdvMSS)
			} else if uint32(rt.AdvMSS) != r.AdvMSS {
				r.Mixed = true
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// Diff makes the steps that give each wanted route its advmss (0 removes the metric), and that
// remove the advmss of a route in current that is no longer wanted (current holds only the routes
// tunplan owns or wants: the engine reads no other). A wanted advmss without a default route is a
// step that fails, saying so; a wanted route that was Missing (a snapshot's) or 0 where there is
// none asks for nothing.
func Diff(k Kernel, want, current []protocol.RouteMSS) []change.Step {
	have := map[string]protocol.RouteMSS{}
	for _, r := range current {
		have[r.Dst] = r
	}
	wanted := map[string]bool{}
	var steps []change.Step
	for _, w := range want {
		wanted[w.Dst] = true
		cur, known := have[w.Dst]
		switch {
		case w.Missing:
		case !known || cur.Missing:
			if w.AdvMSS != 0 {
				steps = append(steps, step(k, change.Update, w.Dst, "none (no default route)", strconv.FormatUint(uint64(w.AdvMSS), 10), w.AdvMSS))
			}
		case cur.Mixed || cur.AdvMSS != w.AdvMSS:
			steps = append(steps, step(k, change.Update, w.Dst, shown(cur), strconv.FormatUint(uint64(w.AdvMSS), 10), w.AdvMSS))
		}
	}
	for _, c := range current {
		if !wanted[c.Dst] && !c.Missing && (c.AdvMSS != 0 || c.Mixed) {
			steps = append(steps, step(k, change.Delete, c.Dst, shown(c), "", 0))
		}
	}
	return steps
}

// shown renders a route's advmss as a change shows it: "0" (no metric), "1440", "1440 (not on
// every default route)".
func shown(r protocol.RouteMSS) string {
	s := strconv.FormatUint(uint64(r.AdvMSS), 10)
	if r.Mixed {
		s += " (not on every default route)"
	}
	return s
}

func step(k Kernel, act change.Action, dst, before, after string, advmss uint32) change.Step {
	return change.Step{
		Change: change.Change{Module: Module, Address: "route " + dst + " advmss", Action: act, Before: before, After: after},
		Do:     func() error { return Set(k, advmss) },
	}
}

// Set gives every IPv4 default route of the main table the advmss (0: none), reading the routes
// when it runs. Without a default route, setting one is an error and removing one is done.
func Set(k Kernel, advmss uint32) error {
	routes, all, err := defaults(k)
	if err != nil {
		return err
	}
	if len(routes) == 0 {
		if advmss == 0 {
			return nil
		}
		return fmt.Errorf("mss: no IPv4 default route in the main table to set advmss %d on: tunnel_mss applies to the "+
			"default route, which carries the realserver's replies to its clients (add one, as `ip route add default via "+
			"<gateway>`, or remove tunnel_mss from the host)", advmss)
	}
	for _, r := range routes {
		if uint32(r.AdvMSS) == advmss {
			continue
		}
		// The kernel replaces the first route of the same table, destination, TOS and metric: with
		// two such routes (`ip route append`), the other could be replaced instead.
		for _, o := range all {
			if o.Tos == r.Tos && o.Priority == r.Priority && !sameRoute(o, r) {
				return fmt.Errorf("mss: the default routes %s and %s share metric %d: changing the advmss of one could "+
					"replace the other; give them different metrics", describe(r), describe(o), r.Priority)
			}
		}
		nr := r
		nr.AdvMSS = int(advmss)
		if nr.Dst == nil {
			nr.Dst = &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
		}
		// Flags the kernel reports but refuses in a request (linkdown, dead, offload…): only onlink is
		// the route's own.
		nr.Flags &= int(netlink.FLAG_ONLINK)
		nr.MultiPath = nil
		for _, nh := range r.MultiPath {
			c := *nh
			c.Flags &= int(netlink.FLAG_ONLINK)
			nr.MultiPath = append(nr.MultiPath, &c)
		}
		if err := k.RouteChange(&nr); err != nil {
			return fmt.Errorf("mss: set advmss %d on the default route %s: %w", advmss, describe(r), err)
		}
		if err := check(k, r, advmss); err != nil {
			return err
		}
	}
	return nil
}

// check reads the route back: the same gateway, device, source, protocol and paths, with the advmss.
func check(k Kernel, was netlink.Route, advmss uint32) error {
	_, all, err := defaults(k)
	if err != nil {
		return err
	}
	for _, r := range all {
		if r.Tos == was.Tos && r.Priority == was.Priority && sameRoute(r, was) {
			if uint32(r.AdvMSS) != advmss {
				return fmt.Errorf("mss: the default route %s has advmss %d after it was set to %d", describe(r), r.AdvMSS, advmss)
			}
			return nil
		}
	}
	return fmt.Errorf("mss: the default route %s is not there any more after its advmss was set to %d", describe(was), advmss)
}

// sameRoute compares what must never change: where the route sends packets, and from which source.
func sameRoute(a, b netlink.Route) bool {
	if a.Type != b.Type || a.LinkIndex != b.LinkIndex || !a.Gw.Equal(b.Gw) || !a.Src.Equal(b.Src) ||
		a.Protocol != b.Protocol || a.Scope != b.Scope || len(a.MultiPath) != len(b.MultiPath) {
		return false
	}
	for i := range a.MultiPath {
		x, y := a.MultiPath[i], b.MultiPath[i]
		if x.LinkIndex != y.LinkIndex || !x.Gw.Equal(y.Gw) || x.Hops != y.Hops {
			return false
		}
	}
	return true
}

// defaults lists the IPv4 default routes of the main table: the unicast ones (those replies leave
// by), lowest metric first, and all of them (blackhole, unreachable… too).
func defaults(k Kernel) (unicast, all []netlink.Route, err error) {
	var routes []netlink.Route
	for try := 0; ; try++ {
		routes, err = k.RouteList(nil, netlink.FAMILY_V4)
		// A table that changed during the dump is read again, a few times.
		if err == nil || !errors.Is(err, netlink.ErrDumpInterrupted) || try == 3 {
			break
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("mss: list routes: %w", err)
	}
	for _, r := range routes {
		if !isDefault(r) {
			continue
		}
		all = append(all, r)
		if r.Type == unix.RTN_UNICAST {
			unicast = append(unicast, r)
		}
	}
	slices.SortStableFunc(unicast, func(a, b netlink.Route) int {
		if a.Priority != b.Priority {
			return a.Priority - b.Priority
		}
		return a.Tos - b.Tos
	})
	return unicast, all, nil
}

func isDefault(r netlink.Route) bool {
	if r.Family != netlink.FAMILY_V4 && r.Family != 0 {
		return false
	}
	if r.Table != unix.RT_TABLE_MAIN && r.Table != 0 {
		return false
	}
	if r.Dst == nil {
		return true
	}
	ones, _ := r.Dst.Mask.Size()
	return ones == 0 && (r.Dst.IP.To4() != nil || r.Dst.IP == nil)
}

// describe names a route as `ip route` shows it: "default via 198.18.1.254 dev 2 metric 100".
func describe(r netlink.Route) string {
	s := "default"
	if r.Gw != nil {
		s += " via " + r.Gw.String()
	}
	for _, nh := range r.MultiPath {
		s += " nexthop"
		if nh.Gw != nil {
			s += " via " + nh.Gw.String()
		}
		s += " dev " + device(nh.LinkIndex)
	}
	if r.LinkIndex > 0 {
		s += " dev " + device(r.LinkIndex)
	}
	if r.Priority > 0 {
		s += " metric " + strconv.Itoa(r.Priority)
	}
	return s
}

// device is a device's name, or its index when it has none to tell.
func device(index int) string {
	if ifi, err := net.InterfaceByIndex(index); err == nil {
		return ifi.Name
	}
	return "#" + strconv.Itoa(index)
}
