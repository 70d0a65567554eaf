// Package fou owns the foo-over-UDP receive ports of a GUE realserver (`ip fou add port 6080 gue`),
// through the kernel's generic netlink family "fou" (vishvananda/netlink). A GUE port takes the UDP
// datagrams IPVS sends to it and hands their payload to the protocol the GUE header names: IPIP,
// which tunl0 receives. Only the IPv4 listeners bound to no address, peer or device are read and
// written: a listener bound to one is another object, and never touched.
package fou

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"syscall"

	"github.com/vishvananda/netlink"

	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/protocol"
)

// Module is the kernel module that implements fou, and the Change.Module of its steps.
const Module = "fou"

// Kernel is the fou boundary; *netlink.Handle implements it. FouAdd and FouDel send the port, the
// family and the type (and for FouAdd the IP protocol), never an address: what `ip fou add port P
// gue` sends.
type Kernel interface {
	FouList(family int) ([]netlink.Fou, error)
	FouAdd(f netlink.Fou) error
	FouDel(f netlink.Fou) error
}

// Facts lists the IPv4 wildcard listeners on the ports of scope, sorted by port. The caller reads
// it only while the fou module is loaded (without it there is no listener, and no family to ask).
func Facts(k Kernel, scope []uint16) ([]protocol.FouPort, error) {
	all, err := k.FouList(netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("fou: list ports: %w", err)
	}
	var out []protocol.FouPort
	for _, f := range all {
		if f.Family != netlink.FAMILY_V4 || bound(f) || f.Port <= 0 || f.Port > 65535 || !slices.Contains(scope, uint16(f.Port)) {
			continue
		}
		p := protocol.FouPort{Port: uint16(f.Port), Type: protocol.FouGUE}
		if f.EncapType != netlink.FOU_ENCAP_GUE {
			p.Type, p.Protocol = protocol.FouDirect, uint8(f.Protocol)
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b protocol.FouPort) int { return int(a.Port) - int(b.Port) })
	return out, nil
}

// bound tells whether a listener is tied to a local or peer address, a peer port or a device
// (`ip fou add … local A peer B peer_port P dev D`): not a port tunplan makes.
func bound(f netlink.Fou) bool {
	unset := func(ip net.IP) bool { return len(ip) == 0 || ip.IsUnspecified() }
	return !unset(f.Local) || !unset(f.Peer) || f.PeerPort != 0 || f.IfIndex != 0
}

// Diff makes the steps from current to want: a port wanted and absent is added, one of another type
// replaced (removed, then added as wanted), one current and not wanted (owned, no longer in the
// plan) removed.
func Diff(k Kernel, want, current []protocol.FouPort) []change.Step {
	have := map[uint16]protocol.FouPort{}
	for _, c := range current {
		have[c.Port] = c
	}
	var steps []change.Step
	wanted := map[uint16]bool{}
	for _, w := range want {
		wanted[w.Port] = true
		cur, ok := have[w.Port]
		switch {
		case !ok:
			steps = append(steps, step(change.Create, w.Port, "", w.String(), func() error { return add(k, w) }))
		case cur != w:
			steps = append(steps, step(change.Update, w.Port, cur.String(), w.String(), func() error {
				if err := del(k, cur); err != nil {
					return err
				}
				return add(k, w)
			}))
		}
	}
	for _, c := range current {
		if !wanted[c.Port] {
			steps = append(steps, step(change.Delete, c.Port, c.String(), "", func() error { return del(k, c) }))
		}
	}
	return steps
}

// Address is how a change names the listener on port: "fou port 6080".
func Address(port uint16) string { return "fou port " + strconv.Itoa(int(port)) }

func step(act change.Action, port uint16, before, after string, do func() error) change.Step {
	addr := Address(port)
	return change.Step{
		Change: change.Change{Module: Module, Address: addr, Action: act, Before: before, After: after},
		Do: func() error {
			if err := do(); err != nil {
				return fmt.Errorf("%s: %w", addr, err)
			}
			return nil
		},
	}
}

func toKernel(p protocol.FouPort) netlink.Fou {
	f := netlink.Fou{Family: netlink.FAMILY_V4, Port: int(p.Port), EncapType: netlink.FOU_ENCAP_GUE}
	if p.Type == protocol.FouDirect {
		f.EncapType, f.Protocol = netlink.FOU_ENCAP_DIRECT, int(p.Protocol)
	}
	return f
}

func add(k Kernel, p protocol.FouPort) error {
	err := k.FouAdd(toKernel(p))
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("add: UDP port %d is taken by another socket on this host: %w", p.Port, err)
	case errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("add: no generic netlink family fou (is the fou module loaded?): %w", err)
	case err != nil:
		return fmt.Errorf("add: %w", err)
	}
	return nil
}

func del(k Kernel, p protocol.FouPort) error {
	if err := k.FouDel(toKernel(p)); err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	return nil
}
