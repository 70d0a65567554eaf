package plans

import (
	"fmt"
	"net/netip"

	"github.com/tunplan/tunplan/modules/protocol"
)

// Drains are what `tunplan drain` takes to weight 0 for realserver: its destination in every
// service that names it, by director of the service. A name that is not a realserver of the plan is
// an error, with the closest one.
func (p *Plan) Drains(realserver string) (map[string][]protocol.Drain, error) {
	h, ok := p.all[realserver]
	if !ok || !h.Has(protocol.Realserver) {
		var names []string
		for _, x := range p.all {
			if x.Has(protocol.Realserver) {
				names = append(names, x.Name)
			}
		}
		return nil, fmt.Errorf("%q is not a realserver of the plan%s", realserver, suggest(realserver, names))
	}
	out := map[string][]protocol.Drain{}
	for _, s := range p.Services {
		for _, r := range s.Realservers {
			if r.Host != realserver {
				continue
			}
			svc := s.kernelService()
			d := protocol.Drain{Service: svc.Key(), Address: h.AddressOf(s.AllVIPs()[0]), Port: svc.Port, Realserver: realserver}
			for _, dir := range s.Directors {
				out[dir] = append(out[dir], d)
			}
		}
	}
	return out, nil
}

// RealserverNames are the plan's realservers by address (each of their addresses), also those
// Limit left out: what status shows a destination as.
func (p *Plan) RealserverNames() map[netip.Addr]string {
	out := map[netip.Addr]string{}
	for _, h := range p.all {
		if h.Has(protocol.Realserver) {
			for _, a := range h.Addresses {
				out[a] = h.Name
			}
		}
	}
	return out
}
