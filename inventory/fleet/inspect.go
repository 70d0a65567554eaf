package fleet

import (
	"fmt"

	"github.com/tunplan/tunplan/modules/protocol"
)

// Inspect asks every connected host what it has (`tunplan import`): its IPVS services, tunl0's
// addresses and its other addresses. It changes nothing and takes no lock. A helper that answers
// without an inventory is a failure of that host.
func (r *Run) Inspect() {
	r.read(Inspect, protocol.OpInspect, "an inventory", func(resp protocol.Response) bool { return resp.Inventory != nil })
}

// Inventory is what the host reported in the Inspect phase; nil when it did not take part or failed.
func (h *HostRun) Inventory() *protocol.Inventory {
	if resp := h.answer(Inspect); resp != nil {
		return resp.Inventory
	}
	return nil
}

// read sends every connected host a request of op that only reads (no desired state, no lock), as
// phase. A helper whose answer lacks what has checks for (what, in the error) fails that host.
func (r *Run) read(phase Phase, op protocol.Op, what string, has func(protocol.Response) bool) {
	r.request(r.Hosts, phase, func(h *HostRun) protocol.Request {
		return protocol.Request{Op: op, Host: h.Name()}
	})
	r.require(phase, op, what, has)
}

// require fails the hosts whose helper answered op in phase without what has checks for (what, in
// the error).
func (r *Run) require(phase Phase, op protocol.Op, what string, has func(protocol.Response) bool) {
	for _, h := range r.Hosts {
		for i := range h.Results {
			if res := &h.Results[i]; res.Phase == phase && res.Err == nil && !has(res.Response) {
				res.Err = fmt.Errorf("host %s: the helper answered %s without %s", h.Name(), op, what)
			}
		}
	}
}

// answer is the host's response in phase; nil when it did not take part or failed.
func (h *HostRun) answer(phase Phase) *protocol.Response {
	r, ok := h.Result(phase)
	if !ok || r.Err != nil {
		return nil
	}
	return &r.Response
}
