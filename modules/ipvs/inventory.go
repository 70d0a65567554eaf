package ipvs

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	cipvs "github.com/cloudflare/ipvs"

	"github.com/tunplan/tunplan/modules/protocol"
)

// Inventory reads the whole IPVS table for `tunplan import`: the services tunplan can manage (TCP
// or UDP on an IPv4 VIP, every destination an IPv4 address forwarding by IPIP tunnel) with their
// destinations, sorted as Facts sorts them, and one line for each other service saying why it was
// left out ("fwmark 3: …", "tcp/198.18.0.9:80: destination 198.18.1.5:80 forwards by masq, …").
// It reads what Facts reads, once: one service dump and the destinations of the services kept.
func Inventory(k Kernel) (services []protocol.Service, skipped []string, err error) {
	svcs, err := k.Services()
	if err != nil {
		return nil, nil, fmt.Errorf("ipvs: %w", err)
	}
	var kept []cipvs.Service
	for _, se := range svcs {
		if _, ok := fromKernel(se); ok {
			kept = append(kept, se)
		} else {
			skipped = append(skipped, notManaged(se))
		}
	}
	services = []protocol.Service{}
	if len(kept) > 0 {
		dests, err := k.Destinations(kept, true) // a GUE or GRE destination must not read as IPIP
		if err != nil {
			return nil, nil, fmt.Errorf("ipvs: %w", err)
		}
		for i, se := range kept {
			s, _ := fromKernel(se)
			s.Destinations = []protocol.Destination{}
			why := ""
			for _, de := range dests[i] {
				if why = unmanagedDest(de); why != "" {
					break
				}
				s.Destinations = append(s.Destinations, protocol.Destination{Address: de.Address, Port: de.Port, Weight: de.Weight, Forward: protocol.ForwardTunnel})
			}
			if why != "" {
				skipped = append(skipped, s.Key().String()+": "+why)
				continue
			}
			sortDestinations(s.Destinations)
			services = append(services, s)
		}
	}
	sort.Slice(services, func(i, j int) bool { return services[i].Key().String() < services[j].Key().String() })
	sort.Strings(skipped)
	return services, skipped, nil
}

// notManaged says why fromKernel refused a service.
func notManaged(s cipvs.Service) string {
	switch {
	case s.FWMark != 0:
		return fmt.Sprintf("fwmark %d: a firewall-mark service; tunplan manages TCP and UDP services on an IPv4 VIP", s.FWMark)
	case !s.Address.Is4():
		return fmt.Sprintf("%s/%s: an IPv6 service; tunplan manages IPv4 services only", protoName(s.Protocol), netip.AddrPortFrom(s.Address, s.Port))
	}
	return fmt.Sprintf("%s/%s: protocol %s; tunplan manages TCP and UDP services", protoName(s.Protocol), netip.AddrPortFrom(s.Address, s.Port), protoName(s.Protocol))
}

// unmanagedDest says why a destination cannot be one tunplan writes, or "" when it can.
func unmanagedDest(d cipvs.Destination) string {
	at := netip.AddrPortFrom(d.Address, d.Port).String()
	switch {
	case !d.Address.Is4():
		return "destination " + at + " is an IPv6 address; tunplan tunnels to IPv4 realservers"
	case d.FwdMethod != cipvs.Tunnel:
		fwd, ok := forwards[d.FwdMethod]
		if !ok {
			fwd = fmt.Sprintf("method %d", d.FwdMethod)
		}
		return "destination " + at + " forwards by " + fwd + ", not tunnel; tunplan manages LVS-TUN services only"
	case d.TunnelType != cipvs.IPIP:
		return fmt.Sprintf("destination %s tunnels by %s; tunplan import writes IPIP services (write tunnel = %q and its block in the plan by hand)", at, d.TunnelType, strings.ToLower(d.TunnelType.String()))
	}
	return ""
}

func protoName(p cipvs.Protocol) string {
	for name, q := range protocols {
		if q == p {
			return name
		}
	}
	switch p {
	case cipvs.SCTP:
		return "sctp"
	}
	return fmt.Sprintf("protocol-%d", p)
}
