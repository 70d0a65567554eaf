package ipvs

import (
	"fmt"
	"net/netip"

	cipvs "github.com/cloudflare/ipvs"

	"github.com/tunplan/tunplan/modules/protocol"
)

// Status reads the services of want as the kernel has them now, for `tunplan status`: out[i] is
// want[i], with its destinations sorted as Facts sorts them, each with its weight and counters. A
// service the kernel does not have is Missing, with no destinations. It reads the service table
// once and dumps the destinations of the wanted services only.
func Status(k Kernel, want []protocol.Key) ([]protocol.ServiceStatus, error) {
	svcs, err := k.Services()
	if err != nil {
		return nil, fmt.Errorf("ipvs: %w", err)
	}
	have := make(map[protocol.Key]cipvs.Service, len(svcs))
	for _, ks := range svcs {
		if s, ok := fromKernel(ks); ok {
			have[s.Key()] = ks
		}
	}
	out := make([]protocol.ServiceStatus, len(want))
	var ks []cipvs.Service
	var at []int // where ks[j] is in out
	for i, key := range want {
		out[i] = protocol.ServiceStatus{Service: key, Destinations: []protocol.DestinationStatus{}}
		s, ok := have[key]
		if !ok {
			out[i].Missing = true
			continue
		}
		out[i].Scheduler = s.Scheduler
		ks = append(ks, s)
		at = append(at, i)
	}
	if len(ks) == 0 {
		return out, nil
	}
	dests, err := k.Counters(ks)
	if err != nil {
		return nil, fmt.Errorf("ipvs: %w", err)
	}
	for j, i := range at {
		ds := out[i].Destinations
		for _, d := range dests[j] {
			ds = append(ds, protocol.DestinationStatus{Address: d.Address, Port: d.Port, Weight: d.Weight, Counters: countersOf(d)})
		}
		sortByAddrPort(ds, func(d protocol.DestinationStatus) netip.AddrPort { return netip.AddrPortFrom(d.Address, d.Port) })
		out[i].Destinations = ds
	}
	return out, nil
}

// countersOf is a destination's counters: its 64-bit statistics, or the 32-bit ones when the kernel
// sent only those (before Linux 4.1). Both are sent from one snapshot: when the 64-bit ones are all
// 0, the 32-bit ones are too, or were sent alone.
func countersOf(d cipvs.DestinationExtended) protocol.Counters {
	st := d.Stats64
	if st == (cipvs.Stats{}) {
		st = d.Stats
	}
	return protocol.Counters{
		ActiveConns: d.ActiveConnections, InactiveConns: d.InactiveConnections,
		Conns: st.Connections, InPackets: st.IncomingPackets, OutPackets: st.OutgoingPackets,
		InBytes: st.IncomingBytes, OutBytes: st.OutgoingBytes,
	}
}
