package ipvs

// IPVS goes through github.com/cloudflare/ipvs: it is maintained, speaks generic netlink through
// mdlayher/genetlink without cgo, and encodes what tunnel mode needs (the tunnel type and the
// destination's address family), which moby/ipvs does not.

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"

	cipvs "github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"

	"github.com/tunplan/tunplan/modules/change"
)

// Kernel is the IPVS boundary; cloudflare/ipvs's Client implements it.
type Kernel = cipvs.Client

// Key identifies a virtual service.
type Key struct {
	Protocol string
	Address  netip.Addr
	Port     uint16
}

func (k Key) String() string {
	return fmt.Sprintf("%s/%s", k.Protocol, netip.AddrPortFrom(k.Address, k.Port))
}

// Key returns the service's identity.
func (s Service) Key() Key { return Key{s.Protocol, s.Address, s.Port} }

func (s Service) attrs() string {
	return fmt.Sprintf("scheduler=%s persistence=%d", s.Scheduler, s.Persistence)
}

func (d Destination) attrs() string { return fmt.Sprintf("weight=%d fwd=%s", d.Weight, d.Forward) }

var (
	protocols = map[string]cipvs.Protocol{"tcp": cipvs.TCP, "udp": cipvs.UDP}
	forwards  = map[cipvs.ForwardType]string{cipvs.Tunnel: "tunnel", cipvs.DirectRoute: "route", cipvs.Masquerade: "masq", cipvs.Local: "local"}
)

// Facts reads the IPVS table once (one service dump, one destination dump per service in scope)
// and returns the services in scope with their destinations, sorted. A nil scope reads them all.
func Facts(k Kernel, scope map[Key]bool) ([]Service, error) {
	svcs, err := k.Services()
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // cloudflare/ipvs answers an empty dump with ErrNotExist
	}
	if err != nil {
		return nil, fmt.Errorf("ipvs: list services: %w", err)
	}
	var out []Service
	for _, se := range svcs {
		s, ok := fromKernel(se.Service)
		if !ok || (scope != nil && !scope[s.Key()]) {
			continue
		}
		dests, err := k.Destinations(se.Service)
		if errors.Is(err, os.ErrNotExist) {
			err = nil // a service without destinations
		}
		if err != nil {
			return nil, fmt.Errorf("ipvs: list destinations of %s: %w", s.Key(), err)
		}
		s.Destinations = []Destination{}
		for _, de := range dests {
			fwd, ok := forwards[de.FwdMethod]
			if !ok {
				fwd = fmt.Sprintf("method-%d", de.FwdMethod)
			}
			s.Destinations = append(s.Destinations, Destination{Address: de.Address, Port: de.Port, Weight: de.Weight, Forward: fwd})
		}
		sortDestinations(s.Destinations)
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key().String() < out[j].Key().String() })
	return out, nil
}

func fromKernel(ks cipvs.Service) (Service, bool) {
	var proto string
	for name, p := range protocols {
		if p == ks.Protocol {
			proto = name
		}
	}
	if proto == "" || ks.FWMark != 0 || !ks.Address.Is4() {
		return Service{}, false // fwmark, SCTP and IPv6 services are not tunplan's
	}
	s := Service{Protocol: proto, Address: ks.Address, Port: ks.Port, Scheduler: ks.Scheduler}
	if ks.Flags&cipvs.ServicePersistent != 0 {
		s.Persistence = ks.Timeout
	}
	return s, true
}

func toKernel(s Service) cipvs.Service {
	ks := cipvs.Service{
		Address: s.Address, Port: s.Port, Protocol: protocols[s.Protocol], Family: cipvs.INET,
		Scheduler: s.Scheduler, Netmask: netmask.MaskFrom(32, 32),
	}
	if s.Persistence > 0 {
		ks.Flags, ks.Timeout = cipvs.ServicePersistent, s.Persistence
	}
	return ks
}

func destToKernel(d Destination) cipvs.Destination {
	kd := cipvs.Destination{Address: d.Address, Port: d.Port, Weight: d.Weight, Family: cipvs.INET, FwdMethod: cipvs.Tunnel, TunnelType: cipvs.IPIP}
	for m, name := range forwards {
		if name == d.Forward {
			kd.FwdMethod = m
		}
	}
	return kd
}

// Diff makes the steps from current to want. Services in current but not in want are removed
// (the engine only reads services tunplan owns or wants); inside a service every destination is
// compared, so one added by hand is drift. Scheduler, persistence, weight and forwarding method are
// compared; counters never are.
func Diff(open func() (Kernel, error), want, current []Service) []change.Step {
	have := map[Key]Service{}
	for _, s := range current {
		have[s.Key()] = s
	}
	var steps []change.Step
	wanted := map[Key]bool{}
	for _, w := range want {
		w := w
		wanted[w.Key()] = true
		addr := "ipvs " + w.Key().String()
		cur, exists := have[w.Key()]
		switch {
		case !exists:
			steps = append(steps, ipvsStep(open, change.Create, addr, "", w.attrs(), func(k Kernel) error { return k.CreateService(toKernel(w)) }))
		case cur.attrs() != w.attrs():
			steps = append(steps, ipvsStep(open, change.Update, addr, cur.attrs(), w.attrs(), func(k Kernel) error { return k.UpdateService(toKernel(w)) }))
		}
		steps = append(steps, destSteps(open, w, cur.Destinations)...)
	}
	for _, c := range current {
		if !wanted[c.Key()] {
			c := c
			steps = append(steps, ipvsStep(open, change.Delete, "ipvs "+c.Key().String(), fmt.Sprintf("%s destinations=%d", c.attrs(), len(c.Destinations)), "",
				func(k Kernel) error { return k.RemoveService(toKernel(c)) }))
		}
	}
	return steps
}

func destSteps(open func() (Kernel, error), svc Service, current []Destination) []change.Step {
	type dkey struct {
		a netip.Addr
		p uint16
	}
	have := map[dkey]Destination{}
	for _, d := range current {
		have[dkey{d.Address, d.Port}] = d
	}
	ks := toKernel(svc)
	name := func(d Destination) string {
		return fmt.Sprintf("ipvs %s -> %s", svc.Key(), netip.AddrPortFrom(d.Address, d.Port))
	}
	var steps []change.Step
	wanted := map[dkey]bool{}
	for _, d := range svc.Destinations {
		d := d
		wanted[dkey{d.Address, d.Port}] = true
		cur, ok := have[dkey{d.Address, d.Port}]
		switch {
		case !ok:
			steps = append(steps, ipvsStep(open, change.Create, name(d), "", d.attrs(), func(k Kernel) error { return k.CreateDestination(ks, destToKernel(d)) }))
		case cur.attrs() != d.attrs():
			steps = append(steps, ipvsStep(open, change.Update, name(d), cur.attrs(), d.attrs(), func(k Kernel) error { return k.UpdateDestination(ks, destToKernel(d)) }))
		}
	}
	for _, d := range current {
		if !wanted[dkey{d.Address, d.Port}] {
			d := d
			steps = append(steps, ipvsStep(open, change.Delete, name(d), d.attrs(), "", func(k Kernel) error { return k.RemoveDestination(ks, destToKernel(d)) }))
		}
	}
	return steps
}

// ipvsStep opens IPVS only when the step runs: before ip_vs is loaded there is no IPVS to talk to.
func ipvsStep(open func() (Kernel, error), act change.Action, addr, before, after string, do func(Kernel) error) change.Step {
	return change.Step{
		Change: change.Change{Module: "ipvs", Address: addr, Action: act, Before: before, After: after},
		Do: func() error {
			k, err := open()
			if err == nil {
				err = do(k)
			}
			if err != nil {
				return fmt.Errorf("ipvs: %s %s: %w", act, strings.TrimPrefix(addr, "ipvs "), err)
			}
			return nil
		},
	}
}

func sortDestinations(ds []Destination) {
	sort.Slice(ds, func(i, j int) bool {
		if ds[i].Address != ds[j].Address {
			return ds[i].Address.Less(ds[j].Address)
		}
		return ds[i].Port < ds[j].Port
	})
}
