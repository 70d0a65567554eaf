package fleet

import (
	"fmt"

	"github.com/tunplan/tunplan/modules/protocol"
)

// Inspect asks every connected host what it has (`tunplan import`): its IPVS services, tunl0's
// addresses and its other addresses. It changes nothing and takes no lock. A helper that answers
// without an inventory is a failure of that host.
func (r *Run) Inspect() {
	r.request(r.Hosts, Inspect, func(h *HostRun) protocol.Request {
		return protocol.Request{Op: protocol.OpInspect, Host: h.Name()}
	})
	for _, h := range r.Hosts {
		for i := range h.Results {
			if res := &h.Results[i]; res.Phase == Inspect && res.Err == nil && res.Response.Inventory == nil {
				res.Err = fmt.Errorf("host %s: the helper answered inspect without an inventory", h.Name())
			}
		}
	}
}

// Inventory is what the host reported in the Inspect phase; nil when it did not take part or failed.
func (h *HostRun) Inventory() *protocol.Inventory {
	r, ok := h.Result(Inspect)
	if !ok || r.Err != nil {
		return nil
	}
	return r.Response.Inventory
}
