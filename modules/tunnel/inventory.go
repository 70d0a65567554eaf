package tunnel

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// Inventory lists the host's IPv4 addresses for `tunplan import`: those on device (tunl0, where a
// realserver carries its VIPs), as prefixes, and those on every other device but the loopback, in
// device order (by index, as the kernel lists them) then address order: the addresses a director
// may tunnel to, and a director's own. A host without device has no tunnel addresses.
func Inventory(k Kernel, device string) (onDevice []netip.Prefix, others []netip.Addr, err error) {
	links, err := k.LinkList()
	if err != nil {
		return nil, nil, fmt.Errorf("tunnel: list devices: %w", err)
	}
	for _, l := range links {
		a := l.Attrs()
		if a.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := k.AddrList(l, netlink.FAMILY_V4)
		if err != nil {
			return nil, nil, fmt.Errorf("tunnel: %s: list addresses: %w", a.Name, err)
		}
		for _, ad := range addrs {
			p, ok := prefixOf(ad)
			switch {
			case !ok || !p.Addr().Is4(): // import writes IPv4 services
			case a.Name == device:
				onDevice = append(onDevice, p)
			case !p.Addr().IsLoopback():
				others = append(others, p.Addr())
			}
		}
	}
	return onDevice, others, nil
}
