package ipvs

import (
	"errors"
	"net/netip"

	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/protocol"
)

// Reweigh sets the weights of some destinations of service svc, as the kernel has it now, and
// nothing else: weight says, for each of its destinations, the weight it must have (ok false:
// leave it). It returns the changes it made, after the kernel answered them all. The watcher and a
// drain change weights this way, never a service or a destination's membership. A service that is
// not in the kernel is an error (its weights are left to the next apply), which callers name.
func Reweigh(k Kernel, svc protocol.Key, weight func(netip.AddrPort) (uint32, bool)) ([]change.Change, error) {
	cur, err := Facts(k, map[protocol.Key]bool{svc: true}, true)
	if err != nil {
		return nil, err
	}
	if len(cur) != 1 {
		return nil, errors.New("the service is not in the kernel: its weights are left to the next apply")
	}
	next := cur[0]
	next.Destinations = append([]protocol.Destination(nil), cur[0].Destinations...)
	for i := range next.Destinations {
		d := &next.Destinations[i]
		if w, ok := weight(netip.AddrPortFrom(d.Address, d.Port)); ok {
			d.Weight = w
		}
	}
	steps := Diff(func() (Kernel, error) { return k, nil }, []protocol.Service{next}, cur)
	for _, s := range steps {
		if err := s.Do(); err != nil {
			return nil, err
		}
	}
	if len(steps) == 0 {
		return nil, nil
	}
	return change.Changes(steps), k.Flush()
}
