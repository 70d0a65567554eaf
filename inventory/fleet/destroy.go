package fleet

import "github.com/tunplan/tunplan/modules/protocol"

// The phases of a destroy: what it would remove, then directors before realservers, so no traffic
// goes to a realserver that already dropped the VIP.
const (
	DestroyPreview     Phase = "destroy-preview"
	DestroyDirectors   Phase = "destroy-directors"
	DestroyRealservers Phase = "destroy-realservers"
)

// PreviewDestroy asks every host what a destroy would remove, changing nothing.
func (r *Run) PreviewDestroy() {
	r.request(r.Hosts, DestroyPreview, func(h *HostRun) protocol.Request {
		return protocol.Request{Op: protocol.OpDestroy, Host: h.Name(), DryRun: true}
	})
}

// Destroy removes everything tunplan owns from the hosts, directors first; the realservers go only
// when every director succeeded. keepHistory keeps each host's generations (and records the destroy
// as one). It reports whether every host succeeded.
func (r *Run) Destroy(keepHistory bool) bool {
	var directors, others []*HostRun
	for _, h := range r.Hosts {
		if h.Roles.Has(protocol.Director) {
			directors = append(directors, h)
		} else {
			others = append(others, h)
		}
	}
	build := func(h *HostRun) protocol.Request {
		return protocol.Request{Op: protocol.OpDestroy, Host: h.Name(), RunID: r.ID, Actor: r.Actor, KeepHistory: keepHistory, LockWaitMS: r.lockWaitMS()}
	}
	r.request(directors, DestroyDirectors, build)
	if len(r.Failed()) > 0 {
		return false
	}
	r.request(others, DestroyRealservers, build)
	return len(r.Failed()) == 0
}
