// Package ipvs reads and reconciles IPVS virtual services and their destinations over generic netlink.
package ipvs

import "net/netip"

// Service is one IPVS virtual service (ipvsadm -A) with its destinations (ipvsadm -a).
type Service struct {
	Protocol     string        `json:"protocol"` // "tcp" or "udp"
	Address      netip.Addr    `json:"address"`  // the VIP
	Port         uint16        `json:"port"`
	Scheduler    string        `json:"scheduler"`             // rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, mh, fo, ovf
	Persistence  uint32        `json:"persistence,omitempty"` // seconds; 0 = not persistent (ipvsadm -p)
	Destinations []Destination `json:"destinations"`          // sorted by Address, Port
}

// Destination is one realserver of a service.
type Destination struct {
	Address netip.Addr `json:"address"`
	Port    uint16     `json:"port"`
	Weight  uint32     `json:"weight"`  // 0..65535; 0 drains
	Forward string     `json:"forward"` // "tunnel" (ipvsadm -i); facts may also read "route", "masq", "local"
}
