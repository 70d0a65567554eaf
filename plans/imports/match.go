package imports

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/tunplan/tunplan/modules/protocol"
)

// realserver is the host a destination tunnels to: the host read that has its address (a host is
// found by one address only), else a host made for it, named after it and reached over SSH there.
func (b *builder) realserver(rip netip.Addr) (*host, error) {
	var found []*host
	for _, h := range b.hosts {
		if slices.Contains(h.Inventory.Addresses, rip) {
			found = append(found, h)
		}
	}
	switch {
	case len(found) > 1:
		return nil, fmt.Errorf("destination %s is an address of both %s and %s: give each realserver its own address", rip, found[0].Name, found[1].Name)
	case len(found) == 1:
		h := found[0]
		if h.address.IsValid() && h.address != rip {
			return nil, fmt.Errorf("host %s is the destination of both %s and %s: a plan gives a realserver one address; make the services tunnel to one of them", h.Name, h.address, rip)
		}
		h.address = rip
		h.addRole(protocol.Realserver)
		return h, nil
	}
	if h := b.made[rip]; h != nil {
		return h, nil
	}
	a := rip.As4()
	name := fmt.Sprintf("rs-%d-%d-%d-%d", a[0], a[1], a[2], a[3])
	if b.byName[name] != nil {
		name = uniqueName(name, b.byName)
	}
	h := &host{Host: Host{Name: name, SSHAddress: rip.String()}, address: rip, roles: protocol.Roles{protocol.Realserver}}
	b.byName[name], b.made[rip] = h, h
	b.madeHosts = append(b.madeHosts, h)
	b.note("%s: destination %s is no address of the hosts read: the plan reaches it over SSH at that address; its tunl0 was not read (give it with --realserver to read it, or to name it)", name, rip)
	return h, nil
}

// directorAddresses gives each director without one (as a realserver) its address: its SSH
// address when the host has it, else its first other address that is no VIP and no other host's.
func (b *builder) directorAddresses(vips map[netip.Addr]bool) error {
	taken := map[netip.Addr]bool{}
	for _, h := range append(slices.Clone(b.hosts), b.madeHosts...) {
		if h.address.IsValid() {
			taken[h.address] = true
		}
	}
	for _, h := range b.hosts {
		if !h.roles.Has(protocol.Director) || h.address.IsValid() {
			continue
		}
		usable := func(a netip.Addr) bool {
			return a.Is4() && a.IsGlobalUnicast() && !vips[a] && !taken[a] && slices.Contains(h.Inventory.Addresses, a)
		}
		if a, err := netip.ParseAddr(h.SSHAddress); err == nil && usable(a) {
			h.address = a
		} else if i := slices.IndexFunc(h.Inventory.Addresses, usable); i >= 0 {
			h.address = h.Inventory.Addresses[i]
		} else {
			return fmt.Errorf("director %s has no IPv4 address of its own to put in the plan (its addresses: %v; VIPs and other hosts' addresses excluded)", h.Name, h.Inventory.Addresses)
		}
		taken[h.address] = true
	}
	return nil
}
