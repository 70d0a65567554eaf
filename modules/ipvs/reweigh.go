package ipvs

import (
	"errors"
	"net/netip"

	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/protocol"
)

// Edit changes the destinations of service svc, as the kernel has it now, and nothing else: edit
// gets the kernel's destinations (a copy) and returns them as they must be: weights changed, some
// left out (removed), some added. It returns the changes it made, after the kernel answered them
// all. The watcher and a drain change a service this way, never its scheduler or persistence. A
// service that is not in the kernel is an error (it is left to the next apply), which callers name.
func Edit(k Kernel, svc protocol.Key, edit func([]protocol.Destination) []protocol.Destination) ([]change.Change, error) {
	cur, err := Facts(k, map[protocol.Key]bool{svc: true}, true)
	if err != nil {
		return nil, err
	}
	if len(cur) != 1 {
		return nil, errors.New("the service is not in the kernel: it is left to the next apply")
	}
	next := cur[0]
	next.Destinations = edit(append([]protocol.Destination(nil), cur[0].Destinations...))
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

// Reweigh is Edit of weights alone: weight says, for each destination, the weight it must have
// (ok false: leave it).
func Reweigh(k Kernel, svc protocol.Key, weight func(netip.AddrPort) (uint32, bool)) ([]change.Change, error) {
	return Edit(k, svc, func(ds []protocol.Destination) []protocol.Destination {
		for i := range ds {
			if w, ok := weight(netip.AddrPortFrom(ds[i].Address, ds[i].Port)); ok {
				ds[i].Weight = w
			}
		}
		return ds
	})
}
