package host

import (
	"errors"
	"io/fs"
	"net/netip"
	"path/filepath"
	"slices"

	"github.com/tunplan/tunplan/modules/ipvs"
	"github.com/tunplan/tunplan/modules/protocol"
)

// An operator's drains (`tunplan drain`) are kept on the director (protocol.DrainFile). A drained
// destination's effective weight is 0 until it is undrained, whatever the plan says: diff shows it
// apart (held, not drift), apply leaves it, the watcher keeps it at 0, and the boot restore brings
// it back at 0.

const drainsName = "drains"

func (e *Engine) drainPath() string { return filepath.Join(e.Dir, protocol.DrainName) }

// drains are the director's drains; none when it has none.
func (e *Engine) drains() ([]protocol.Drain, error) {
	var d protocol.Drains
	err := readState(drainsName, e.drainPath(), &d)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return d.Drains, err
}

// drain records req.Drains (OpDrain) or forgets them (OpUndrain), then gives each of them its
// effective weight in the kernel: 0 while drained, else the plan's (req.Desired) unless the watcher
// holds it at 0. Nothing else changes: not a service, not another destination's weight.
func (e *Engine) drain(req protocol.Request, resp *protocol.Response) error {
	have, err := e.drains()
	if err != nil {
		return err
	}
	same := func(a, b protocol.Drain) bool {
		return a.Service == b.Service && a.Address == b.Address && a.Port == b.Port
	}
	have = slices.DeleteFunc(have, func(d protocol.Drain) bool {
		return slices.ContainsFunc(req.Drains, func(x protocol.Drain) bool { return same(d, x) })
	})
	if req.Op == protocol.OpDrain {
		for _, d := range req.Drains {
			d.Actor, d.Since = req.Actor, e.clock().UTC()
			have = append(have, d)
		}
	}
	if err := mkdirPrivate(e.Dir); err != nil {
		return err
	}
	if err := writeJSON(e.drainPath(), protocol.Drains{Drains: have}); err != nil {
		return err
	}
	want, _, err := e.held(req.Desired)
	if err != nil {
		return err
	}
	weights := map[protocol.Key]map[netip.AddrPort]uint32{}
	for _, d := range req.Drains {
		i := slices.IndexFunc(want.Services, func(s protocol.Service) bool { return s.Key() == d.Service })
		if i < 0 {
			continue // not the plan's on this director: nothing to weigh
		}
		for _, x := range want.Services[i].Destinations {
			if x.Address == d.Address && x.Port == d.Port {
				if weights[d.Service] == nil {
					weights[d.Service] = map[netip.AddrPort]uint32{}
				}
				weights[d.Service][netip.AddrPortFrom(x.Address, x.Port)] = x.Weight
			}
		}
	}
	if len(weights) > 0 {
		k, err := e.openIPVS()
		if err != nil {
			return err
		}
		edits := map[protocol.Key]func([]protocol.Destination) []protocol.Destination{}
		for key, w := range weights {
			edits[key] = func(ds []protocol.Destination) []protocol.Destination {
				for i := range ds {
					if v, ok := w[netip.AddrPortFrom(ds[i].Address, ds[i].Port)]; ok {
						ds[i].Weight = v
					}
				}
				return ds
			}
		}
		changes, err := ipvs.Edit(k, edits)
		resp.Changes = append(resp.Changes, changes...)
		if err != nil {
			return err
		}
	}
	resp.Status, err = e.status(req.Desired)
	return err
}

// status reads what `tunplan status` shows of a director (OpStatus): its desired services as the
// kernel has them (the probe services left out), the watcher's report and the drains.
func (e *Engine) status(want protocol.State) (*protocol.Status, error) {
	st := &protocol.Status{Services: []protocol.ServiceStatus{}}
	var err error
	if st.Drains, err = e.drains(); err != nil {
		return nil, err
	}
	st.Health, st.Fresh = e.report(want.Checks)
	var keys []protocol.Key
	for _, s := range want.Services {
		if !protocol.ProbeMark(s.FWMark) {
			keys = append(keys, s.Key())
		}
	}
	if len(keys) == 0 {
		return st, nil
	}
	if !e.Kmod.Loaded("ip_vs") {
		for _, k := range keys {
			st.Services = append(st.Services, protocol.ServiceStatus{Service: k, Missing: true, Destinations: []protocol.DestinationStatus{}})
		}
		return st, nil
	}
	k, err := e.openIPVS()
	if err != nil {
		return nil, err
	}
	st.Services, err = ipvs.Status(k, keys)
	return st, err
}
