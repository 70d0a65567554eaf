// Package tunnel brings the IPIP tunnel device (tunl0) up and owns the addresses (the VIP/32) on it,
// through rtnetlink (vishvananda/netlink).
package tunnel

import "net/netip"

// Link is a device that must be up and carry Addresses. Only the listed addresses are owned: other
// addresses on the device are left alone.
type Link struct {
	Name      string         `json:"name"`              // "tunl0"
	Addresses []netip.Prefix `json:"addresses"`         // VIP/32
	Down      bool           `json:"down,omitempty"`    // facts and snapshots only: the device was down
	Missing   bool           `json:"missing,omitempty"` // facts and snapshots only: there was no such device
}
