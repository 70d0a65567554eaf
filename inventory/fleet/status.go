package fleet

import (
	"slices"

	"github.com/tunplan/tunplan/modules/protocol"
)

// The phases of `tunplan status`, `tunplan drain` and `tunplan undrain`.
const (
	Status  Phase = "status"  // a director's services, weights and counters, its watcher's report and drains
	Drain   Phase = "drain"   // a realserver's destinations recorded as drained, at weight 0
	Undrain Phase = "undrain" // drains forgotten, effective weights given back
)

// Status asks every connected director for its status (protocol.Status): read only, no lock, so it
// answers while another run holds a host. Realservers take no part. An earlier status of the run
// is replaced, so that `status --watch` keeps one per director.
func (r *Run) Status() {
	for _, h := range r.Hosts {
		h.Results = slices.DeleteFunc(h.Results, func(res Result) bool { return res.Phase == Status })
	}
	r.request(r.directors(), Status, func(h *HostRun) protocol.Request {
		return protocol.Request{Op: protocol.OpStatus, Host: h.Name(), Desired: h.Desired}
	})
	r.require(Status, protocol.OpStatus, "a status", hasStatus)
}

// Drain records drains (by director name) on each connected director that has some, and sets their
// weights to 0 there; with undo, it forgets them and gives them back their effective weight (the
// plan's, unless the watcher holds them at 0). Each director answers with its status after.
func (r *Run) Drain(drains map[string][]protocol.Drain, undo bool) {
	phase, op := Drain, protocol.OpDrain
	if undo {
		phase, op = Undrain, protocol.OpUndrain
	}
	var hosts []*HostRun
	for _, h := range r.directors() {
		if len(drains[h.Name()]) > 0 {
			hosts = append(hosts, h)
		}
	}
	r.request(hosts, phase, func(h *HostRun) protocol.Request {
		return protocol.Request{Op: op, Host: h.Name(), Desired: h.Desired, Drains: drains[h.Name()], Actor: r.Actor, LockWaitMS: r.lockWaitMS()}
	})
	r.require(phase, op, "a status", hasStatus)
}

// StatusOf is what the director reported in phase (Status, Drain or Undrain); nil when it did not
// take part or failed.
func (h *HostRun) StatusOf(phase Phase) *protocol.Status {
	if resp := h.answer(phase); resp != nil {
		return resp.Status
	}
	return nil
}

func (r *Run) directors() []*HostRun {
	var out []*HostRun
	for _, h := range r.Hosts {
		if h.Roles.Has(protocol.Director) {
			out = append(out, h)
		}
	}
	return out
}

func hasStatus(resp protocol.Response) bool { return resp.Status != nil }
