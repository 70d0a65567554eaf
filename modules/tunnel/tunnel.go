// Package tunnel brings the tunnel devices up (tunl0, gre0, ip6tnl0) and owns the addresses on them
// (an IPv4 VIP as a /32, an IPv6 VIP as a /128), through rtnetlink (vishvananda/netlink).
package tunnel

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/protocol"
)

// Kernel is the rtnetlink boundary; *netlink.Handle implements it.
type Kernel interface {
	LinkByName(name string) (netlink.Link, error)
	LinkList() ([]netlink.Link, error) // every device: `tunplan import` lists the host's addresses (inventory.go)
	LinkSetUp(link netlink.Link) error
	LinkSetDown(link netlink.Link) error
	AddrList(link netlink.Link, family int) ([]netlink.Addr, error)
	AddrAdd(link netlink.Link, addr *netlink.Addr) error
	AddrDel(link netlink.Link, addr *netlink.Addr) error
}

// Facts reads, for each device in scope, whether it is up and which of the scoped addresses it has,
// of either family, compared by prefix alone (not by flags, such as an IPv6 address's nodad). A
// device that does not exist is reported Missing (and down): restoring that snapshot after a
// module load created the device leaves it down, as the load made it.
func Facts(k Kernel, scope map[string][]netip.Prefix) ([]protocol.Link, error) {
	var out []protocol.Link
	for _, name := range sortedKeys(scope) {
		l, err := k.LinkByName(name)
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			out = append(out, protocol.Link{Name: name, Down: true, Missing: true, Addresses: []netip.Prefix{}})
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("tunnel: %s: %w", name, err)
		}
		addrs, err := k.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return nil, fmt.Errorf("tunnel: %s: list addresses: %w", name, err)
		}
		owned := map[netip.Prefix]bool{}
		for _, p := range scope[name] {
			owned[p] = true
		}
		link := protocol.Link{Name: name, Down: l.Attrs().Flags&net.FlagUp == 0, Addresses: []netip.Prefix{}}
		for _, a := range addrs {
			if p, ok := prefixOf(a); ok && owned[p] {
				link.Addresses = append(link.Addresses, p)
			}
		}
		out = append(out, link)
	}
	return out, nil
}

// Diff makes the steps that bring want's devices to their state: up (or down, for a snapshot of a
// device that was down), wanted addresses added, owned addresses no longer wanted removed.
func Diff(k Kernel, want, current []protocol.Link) []change.Step {
	have := map[string]protocol.Link{}
	for _, l := range current {
		have[l.Name] = l
	}
	wanted := map[string]bool{}
	var steps []change.Step
	for _, w := range want {
		wanted[w.Name] = true
		cur, exists := have[w.Name]
		missing := !exists || cur.Missing
		if (missing && !w.Down) || (!missing && cur.Down != w.Down) {
			before := "up"
			if missing {
				before = "absent"
			} else if cur.Down {
				before = "down"
			}
			after := "up"
			if w.Down {
				after = "down"
			}
			steps = append(steps, step(change.Update, w.Name, "tunnel "+w.Name, before, after, func(l netlink.Link) error {
				if w.Down {
					return k.LinkSetDown(l)
				}
				return k.LinkSetUp(l)
			}, k))
		}
		steps = append(steps, addressSteps(k, w.Name, w.Addresses, cur.Addresses)...)
	}
	for _, c := range current {
		if !wanted[c.Name] {
			steps = append(steps, addressSteps(k, c.Name, nil, c.Addresses)...)
		}
	}
	return steps
}

func addressSteps(k Kernel, dev string, want, have []netip.Prefix) []change.Step {
	in := func(list []netip.Prefix, p netip.Prefix) bool {
		for _, x := range list {
			if x == p {
				return true
			}
		}
		return false
	}
	var steps []change.Step
	for _, p := range want {
		if !in(have, p) {
			steps = append(steps, step(change.Create, dev, fmt.Sprintf("tunnel %s %s", dev, p), "", "present", func(l netlink.Link) error {
				return k.AddrAdd(l, addr(p))
			}, k))
		}
	}
	for _, p := range have {
		if !in(want, p) {
			steps = append(steps, step(change.Delete, dev, fmt.Sprintf("tunnel %s %s", dev, p), "present", "", func(l netlink.Link) error {
				// An address already gone is what the step makes: a device set down (a rollback to
				// before tunplan) loses its IPv6 addresses before their removals run.
				if err := k.AddrDel(l, addr(p)); !errors.Is(err, unix.EADDRNOTAVAIL) {
					return err
				}
				return nil
			}, k))
		}
	}
	return steps
}

// step resolves the device when the step runs, so a device that a module load creates (tunl0) can
// be changed in the same apply.
func step(act change.Action, dev, address, before, after string, do func(netlink.Link) error, k Kernel) change.Step {
	return change.Step{
		Change: change.Change{Module: "tunnel", Address: address, Action: act, Before: before, After: after},
		Do: func() error {
			l, err := k.LinkByName(dev)
			var nf netlink.LinkNotFoundError
			if errors.As(err, &nf) {
				return fmt.Errorf("tunnel: no device %s (for tunl0: is ipip loaded, for gre0: ip_gre, for ip6tnl0: ip6_tunnel, and is net.core.fb_tunnels_only_for_init_net 0?)", dev)
			}
			if err != nil {
				return fmt.Errorf("tunnel: %s: %w", dev, err)
			}
			if err := do(l); err != nil {
				return fmt.Errorf("tunnel: %s: %w", address, err)
			}
			return nil
		},
	}
}

// addr is a VIP as `ip addr add VIP/32 brd VIP dev tunl0` makes it, or an IPv6 one as
// `ip addr add VIP/128 dev ip6tnl0 nodad` does: a VIP is not checked for duplicates on the link
// (duplicate address detection would hold it tentative, and it is on every realserver).
func addr(p netip.Prefix) *netlink.Addr {
	ip := net.IP(p.Addr().AsSlice())
	if p.Addr().Is4() {
		return &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: net.CIDRMask(p.Bits(), 32)}, Broadcast: ip}
	}
	return &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: net.CIDRMask(p.Bits(), 128)}, Flags: unix.IFA_F_NODAD}
}

// prefixOf is an address as a prefix, of the family its mask's length says: rtnetlink gives an IPv4
// address 4 bytes, but a net.IP may hold one in 16.
func prefixOf(a netlink.Addr) (netip.Prefix, bool) {
	if a.IPNet == nil {
		return netip.Prefix{}, false
	}
	ones, bits := a.Mask.Size()
	var ip netip.Addr
	switch bits {
	case 32:
		ip, _ = netip.AddrFromSlice(a.IP.To4())
	case 128:
		ip, _ = netip.AddrFromSlice(a.IP.To16())
	}
	if !ip.IsValid() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(ip, ones), true
}

func sortedKeys(m map[string][]netip.Prefix) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
