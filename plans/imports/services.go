package imports

import (
	"cmp"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"

	"github.com/tunplan/tunplan/modules/protocol"
	"github.com/tunplan/tunplan/plans"
)

// mergedService is one service and the directors that carry it.
type mergedService struct {
	svc       protocol.Service
	directors []string
}

// mergeServices collects the services of every director, each once (in the order first met): a
// service on several directors must be the same on them. Services a plan cannot express are
// skipped.
func (b *builder) mergeServices() (map[protocol.Key]*mergedService, []protocol.Key, error) {
	var order []protocol.Key
	services := map[protocol.Key]*mergedService{}
	for _, d := range b.hosts {
		if !d.Director {
			continue
		}
		for _, why := range d.Inventory.Skipped {
			b.skip(d.Name, why)
		}
		for _, s := range d.Inventory.Services {
			if err := inspected(s); err != nil {
				return nil, nil, fmt.Errorf("%s: inspect answered a service with %v; it reports only IPv4 TCP and UDP services whose destinations all forward by IPIP tunnel, so this answer is not believed", d.Name, err)
			}
			s.Destinations = slices.Clone(s.Destinations)
			slices.SortFunc(s.Destinations, func(x, y protocol.Destination) int {
				return cmp.Or(x.Address.Compare(y.Address), cmp.Compare(x.Port, y.Port)) // as a plan's Desired has them
			})
			if why := unplannable(s); why != "" {
				b.skip(d.Name, s.Key().String()+": "+why)
				continue
			}
			m := services[s.Key()]
			if m == nil {
				services[s.Key()] = &mergedService{svc: s, directors: []string{d.Name}}
				order = append(order, s.Key())
				continue
			}
			if diff := serviceDiff(m.svc, s); diff != "" {
				return nil, nil, fmt.Errorf("service %s differs between directors %s and %s (%s): a virtual_service is the same on all its directors; make them agree, or import them separately",
					s.Key(), m.directors[0], d.Name, diff)
			}
			m.directors = append(m.directors, d.Name)
		}
	}
	return services, order, nil
}

// apartFromHosts keeps the services whose VIP is no host's SSH address and no destination: a plan
// keeps VIPs and hosts' addresses apart.
func (b *builder) apartFromHosts(services map[protocol.Key]*mergedService, order []protocol.Key) []protocol.Key {
	sshIPs := map[netip.Addr]string{}
	for _, h := range b.hosts {
		if a, err := netip.ParseAddr(h.SSHAddress); err == nil {
			sshIPs[a] = h.Name
		}
	}
	rips := map[netip.Addr]bool{}
	for _, k := range order {
		for _, d := range services[k].svc.Destinations {
			rips[d.Address] = true
		}
	}
	var keys []protocol.Key
	for _, k := range order {
		switch by := services[k].directors[0]; {
		case sshIPs[k.Address] != "":
			b.skip(by, fmt.Sprintf("%s: its VIP is the SSH address of host %s; a plan keeps them apart", k, sshIPs[k.Address]))
		case rips[k.Address]:
			b.skip(by, fmt.Sprintf("%s: its VIP is also a destination (a realserver's address); a plan keeps them apart", k))
		default:
			keys = append(keys, k)
		}
	}
	return keys
}

// inspected checks that s is what inspect reports: an IPv4 TCP or UDP service whose destinations
// all forward by IPIP tunnel (the helper lists every other service as skipped). Anything else
// comes from a helper that is not tunplan's, or a compromised host: its protocol would name a
// service in the plan, and the rest would be written as an IPIP service it is not. The error says
// what is wrong, quoting text so that no control character in it reaches the terminal.
func inspected(s protocol.Service) error {
	switch {
	case !slices.Contains(plans.Protocols, s.Protocol):
		return fmt.Errorf("protocol %q", s.Protocol)
	case s.FWMark != 0:
		return fmt.Errorf("firewall mark %d", s.FWMark)
	case !s.Address.Is4():
		return fmt.Errorf("VIP %s", s.Address)
	}
	for _, d := range s.Destinations {
		switch {
		case !d.Address.Is4():
			return fmt.Errorf("destination %s", d.Address)
		case d.Forward != protocol.ForwardTunnel:
			return fmt.Errorf("destination %s forwarding by %q", d.Address, d.Forward)
		case d.Tunnel != (protocol.Tunnel{}):
			return fmt.Errorf("destination %s tunnelling by %s", d.Address, d.Tunnel)
		}
	}
	return nil
}

// unplannable says why a plan cannot express s, or "".
func unplannable(s protocol.Service) string {
	switch {
	case s.Port == 0:
		return "a port-0 (every port) service; a virtual_service needs a port from 1 to 65535"
	case !s.Address.IsGlobalUnicast():
		return "its VIP is not a unicast address"
	case !slices.Contains(plans.Schedulers, s.Scheduler):
		return fmt.Sprintf("scheduler %q is not one a plan may name (%s)", s.Scheduler, strings.Join(plans.Schedulers, " "))
	case len(s.Destinations) == 0:
		return "no destinations; a virtual_service needs at least one realserver"
	}
	for _, d := range s.Destinations {
		at := netip.AddrPortFrom(d.Address, d.Port)
		switch {
		case d.Port != s.Port:
			return fmt.Sprintf("destination %s has port %d; in tunnel mode the realserver receives the service port %d, so a plan cannot map ports", at, d.Port, s.Port)
		case d.Weight > 65535:
			return fmt.Sprintf("destination %s has weight %d; a plan's weights go from 0 to 65535", at, d.Weight)
		}
	}
	return ""
}

// serviceDiff says how two directors' copies of a service differ, or "".
func serviceDiff(x, y protocol.Service) string {
	var out []string
	if x.Scheduler != y.Scheduler {
		out = append(out, fmt.Sprintf("scheduler %s vs %s", x.Scheduler, y.Scheduler))
	}
	if x.Persistence != y.Persistence {
		out = append(out, fmt.Sprintf("persistence %d vs %d", x.Persistence, y.Persistence))
	}
	if !reflect.DeepEqual(x.Destinations, y.Destinations) {
		out = append(out, fmt.Sprintf("destinations %s vs %s", dests(x.Destinations), dests(y.Destinations)))
	}
	return strings.Join(out, "; ")
}

// dests is "[198.18.1.183:80 weight 3, …]".
func dests(ds []protocol.Destination) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, fmt.Sprintf("%s weight %d", netip.AddrPortFrom(d.Address, d.Port), d.Weight))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// serviceNames names each service "tcp-80" when it is the only one with its protocol and port,
// else "svc-VIP-PORT" (with "-udp"/"-tcp" when a VIP and port have both protocols).
func serviceNames(keys []protocol.Key) map[protocol.Key]string {
	type pp struct {
		proto string
		port  uint16
	}
	type vp struct {
		vip  netip.Addr
		port uint16
	}
	byPP, byVP := map[pp]int{}, map[vp]int{}
	for _, k := range keys {
		byPP[pp{k.Protocol, k.Port}]++
		byVP[vp{k.Address, k.Port}]++
	}
	out := map[protocol.Key]string{}
	for _, k := range keys {
		switch {
		case byPP[pp{k.Protocol, k.Port}] == 1:
			out[k] = fmt.Sprintf("%s-%d", k.Protocol, k.Port)
		case byVP[vp{k.Address, k.Port}] == 1:
			out[k] = fmt.Sprintf("svc-%s-%d", k.Address, k.Port)
		default:
			out[k] = fmt.Sprintf("svc-%s-%d-%s", k.Address, k.Port, k.Protocol)
		}
	}
	return out
}
