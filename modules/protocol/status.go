package protocol

import (
	"net/netip"
	"time"
)

// Status is what a director answers to OpStatus (and to a drain or an undrain, once done): the
// desired services as the kernel has them now, with each destination's weight and counters, what
// its watcher last reported, and the operator's drains. It is runtime state, read and shown; it
// never decides a change.
type Status struct {
	Services []ServiceStatus `json:"services"`
	Health   *Health         `json:"health,omitempty"` // the watcher's last report; nil: none
	Fresh    bool            `json:"fresh"`            // Health is fresh for the desired checks (Health.Fresh)
	Drains   []Drain         `json:"drains,omitempty"`
}

// ServiceStatus is one virtual service as the kernel has it; Missing when it is not in the kernel.
type ServiceStatus struct {
	Service      Key                 `json:"service"`
	Scheduler    string              `json:"scheduler,omitempty"`
	Missing      bool                `json:"missing,omitempty"`
	Destinations []DestinationStatus `json:"destinations"`
}

// DestinationStatus is one destination as the kernel has it: its weight now (the effective one) and
// its counters.
type DestinationStatus struct {
	Address netip.Addr `json:"address"`
	Port    uint16     `json:"port"`
	Weight  uint32     `json:"weight"`
	Counters
}

// Counters are a destination's IPVS connection counts and totals (ipvsadm -L -n --stats): the
// connections now (active: established TCP; inactive: the others), and since it was added the
// connections scheduled to it, the packets and bytes in (client to realserver) and out (the
// replies IPVS saw; in TUN mode they do not pass the director, so out stays 0).
type Counters struct {
	ActiveConns   uint32 `json:"active_conns"`
	InactiveConns uint32 `json:"inactive_conns"`
	Conns         uint64 `json:"conns"`
	InPackets     uint64 `json:"in_packets"`
	OutPackets    uint64 `json:"out_packets"`
	InBytes       uint64 `json:"in_bytes"`
	OutBytes      uint64 `json:"out_bytes"`
}

// Drain is an operator's override of one destination on one director (`tunplan drain`): its
// weight is 0 until `tunplan undrain`, whatever the plan, an apply or the watcher say. Drains are
// kept in DrainFile, so that they survive a reboot; they are runtime state, not the plan's.
type Drain struct {
	Service    Key        `json:"service"`
	Address    netip.Addr `json:"address"`
	Port       uint16     `json:"port"`
	Realserver string     `json:"realserver,omitempty"` // the plan's name of the realserver drained
	Actor      string     `json:"actor,omitempty"`      // who drained it (user@machine)
	Since      time.Time  `json:"since"`
}

// DrainFile holds a director's drains (Drains), in StateDir.
const (
	DrainName = "drains.json"
	DrainFile = StateDir + "/" + DrainName
)

// Drains is DrainFile's content.
type Drains struct {
	Drains []Drain `json:"drains"`
}
