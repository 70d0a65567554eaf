package ipvs

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	cipvs "github.com/cloudflare/ipvs"

	"github.com/tunplan/tunplan/modules/protocol"
)

// Inventory reads the whole IPVS table for `tunplan import`: the services it imports (TCP or UDP
// on an IPv4 VIP, every destination an IPv4 address forwarding by IPIP tunnel) with their
// destinations, sorted as Facts sorts them, and one line for each other service saying why it was
// left out ("fwmark/3: not imported yet: …", "tcp/198.18.0.9:80: destination 198.18.1.5:80
// forwards by masq, …"). IPv6 and firewall-mark services are tunplan's to apply (Facts reads
// them) but not yet to import. It reads what Facts reads, once: one service dump and the
// destinations of the services kept.
func Inventory(k Kernel) (services []protocol.Service, skipped []string, err error) {
	svcs, err := k.Services()
	if err != nil {
		return nil, nil, fmt.Errorf("ipvs: %w", err)
	}
	var kept []cipvs.Service
	var keep []protocol.Service
	for _, se := range svcs {
		s, ok := fromKernel(se)
		switch {
		case !ok:
			skipped = append(skipped, notManaged(se))
		case s.FWMark != 0 || !s.Address.Is4():
			skipped = append(skipped, s.Key().String()+": not imported yet: tunplan import takes TCP and UDP services on IPv4 VIPs")
		default:
			kept, keep = append(kept, se), append(keep, s)
		}
	}
	services = []protocol.Service{}
	if len(kept) > 0 {
		dests, err := k.Destinations(kept, true) // a GUE or GRE destination must not read as IPIP
		if err != nil {
			return nil, nil, fmt.Errorf("ipvs: %w", err)
		}
		for i, s := range keep {
			s.Destinations = []protocol.Destination{}
			why := ""
			for _, de := range dests[i] {
				if why = unmanagedDest(s, de); why != "" {
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

// notManaged says why fromKernel refused a service: its protocol, or its address family.
func notManaged(s cipvs.Service) string {
	if s.FWMark != 0 {
		return fmt.Sprintf("fwmark %d: address family %d; tunplan manages IPv4 and IPv6 services", s.FWMark, s.Family)
	}
	name := protoName(s.Protocol) + "/" + netip.AddrPortFrom(s.Address, s.Port).String()
	if _, ok := protocols[protoName(s.Protocol)]; !ok {
		return fmt.Sprintf("%s: protocol %s; tunplan manages TCP and UDP services", name, protoName(s.Protocol))
	}
	return fmt.Sprintf("%s: address family %d; tunplan manages IPv4 and IPv6 services", name, s.Family)
}

// unmanagedDest says why a destination of s cannot be one tunplan writes, or "" when it can.
func unmanagedDest(s protocol.Service, d cipvs.Destination) string {
	at := netip.AddrPortFrom(d.Address, d.Port).String()
	switch {
	case d.Address.Is4() != s.Address.Is4():
		return "destination " + at + " is not of the VIP's address family; tunplan does not mix IPv4 and IPv6"
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
