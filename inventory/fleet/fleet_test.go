package fleet

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tunplan/tunplan/inventory/target"
	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/protocol"
)

// fakeHosts answers each host from a table and records every request in order.
type fakeHosts struct {
	mu       sync.Mutex
	changes  map[string][]change.Change
	applyErr map[string]string
	unreach  map[string]bool
	history  map[string][]protocol.Generation
	calls    []string
}

type fakeSession struct {
	f    *fakeHosts
	name string
}

func (f *fakeHosts) dial(t target.Target) (Session, error) {
	if f.unreach[t.Name] {
		return nil, errors.New("host " + t.Name + ": connection refused")
	}
	return fakeSession{f, t.Name}, nil
}

func (s fakeSession) Close() error { return nil }

func (s fakeSession) Run(req protocol.Request) (protocol.Response, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.calls = append(s.f.calls, strings.TrimSpace(s.name+" "+string(req.Op)+" "+string(req.Phase)))
	resp := protocol.Response{Host: s.name, Generations: s.f.history[s.name]}
	switch req.Op {
	case protocol.OpDiff:
		resp.Changes = s.f.changes[s.name]
	case protocol.OpApply:
		if e := s.f.applyErr[s.name]; e != "" {
			return protocol.Response{Host: s.name, Error: e, Outcome: protocol.Restored}, nil
		}
		for _, c := range s.f.changes[s.name] {
			if req.Phase == protocol.PhaseAll || (req.Phase == protocol.PhaseRemove) == (c.Action == change.Delete) {
				resp.Changes = append(resp.Changes, c)
			}
		}
		resp.Outcome, resp.Generation = protocol.Applied, 4
	case protocol.OpRollback:
		resp.Outcome, resp.Generation = protocol.Applied, 5
	}
	return resp, nil
}

func hosts() []Host {
	return []Host{
		{Target: target.Target{Name: "rs1"}, Roles: protocol.Roles{protocol.Realserver}},
		{Target: target.Target{Name: "lvs01"}, Roles: protocol.Roles{protocol.Director}},
		{Target: target.Target{Name: "rs2"}, Roles: protocol.Roles{protocol.Realserver}},
	}
}

var (
	add = change.Change{Module: "tunnel", Address: "tunnel tunl0 198.18.48.180/32", Action: change.Create, After: "present"}
	del = change.Change{Module: "tunnel", Address: "tunnel tunl0 198.18.48.99/32", Action: change.Delete, Before: "present"}
	svc = change.Change{Module: "ipvs", Address: "ipvs tcp/198.18.48.180:80", Action: change.Create, After: "scheduler=rr persistence=0"}
)

func phases(h *HostRun) string {
	var out []string
	for _, r := range h.Results {
		out = append(out, string(r.Phase))
	}
	return strings.Join(out, ",")
}

// Every phase a host takes part in keeps its own result: a realserver that gains a VIP before the
// directors and loses one after them reports both, not only the last.
func TestApplyKeepsEveryPhaseResult(t *testing.T) {
	f := &fakeHosts{changes: map[string][]change.Change{"rs1": {add, del}, "lvs01": {svc}, "rs2": {add}}}
	r := Open(hosts(), f.dial, Options{Parallel: 2})
	defer r.Close()
	r.Diff(true)
	if n := r.Pending(); n != 4 {
		t.Fatalf("pending %d, want 4", n)
	}
	if !r.Apply(false) {
		t.Fatalf("apply failed: %v", r.Failed())
	}
	want := map[string]string{"rs1": "diff,realservers-add,realservers-remove", "lvs01": "diff,directors", "rs2": "diff,realservers-add"}
	for _, h := range r.Hosts {
		if got := phases(h); got != want[h.Name()] {
			t.Errorf("%s: phases %s, want %s", h.Name(), got, want[h.Name()])
		}
		if gen, ok := h.Applied(); !ok || gen != 4 {
			t.Errorf("%s: applied %v generation %d", h.Name(), ok, gen)
		}
	}
	rs1 := r.Hosts[1]
	if a, d := rs1.Changes(RealserversAdd), rs1.Changes(RealserversRemove); len(a) != 1 || a[0] != add || len(d) != 1 || d[0] != del {
		t.Errorf("rs1 add phase %v, remove phase %v", a, d)
	}
	// Realservers' adds, then the director, then the removal.
	last := func(s string) int { return slices.Index(f.calls, s) }
	if !(last("rs1 apply add") < last("lvs01 apply") && last("rs2 apply add") < last("lvs01 apply") && last("lvs01 apply") < last("rs1 apply remove")) {
		t.Errorf("order %v", f.calls)
	}
}

func TestAtomicUndoesOnlyChangedHosts(t *testing.T) {
	f := &fakeHosts{changes: map[string][]change.Change{"rs1": {add}, "lvs01": {svc}}, applyErr: map[string]string{"lvs01": "ipvs: invalid argument"}}
	r := Open(hosts(), f.dial, Options{Parallel: 1})
	r.Diff(true)
	if r.Apply(true) {
		t.Fatal("apply succeeded with a failing director")
	}
	for _, h := range r.Hosts {
		_, undone := h.Result(Undo)
		if want := h.Name() == "rs1"; undone != want {
			t.Errorf("%s: undone %v, want %v (phases %s)", h.Name(), undone, want, phases(h))
		}
	}
	if h := r.Hosts[0]; h.Name() != "lvs01" || h.Err() == nil || !strings.Contains(h.Err().Error(), "host lvs01: ipvs: invalid argument") || h.Outcome() != protocol.Restored {
		t.Errorf("lvs01: %v, outcome %s", h.Err(), h.Outcome())
	}
	if slices.Contains(f.calls, "rs1 apply remove") || slices.Contains(f.calls, "rs2 apply add") {
		t.Errorf("phases after the failure or without changes ran: %v", f.calls)
	}
}

func TestUnreachableHostTakesNoPhase(t *testing.T) {
	f := &fakeHosts{unreach: map[string]bool{"rs2": true}}
	r := Open(hosts(), f.dial, Options{Parallel: 3})
	r.Diff(false)
	failed := r.Failed()
	if len(failed) != 1 || failed[0].Name() != "rs2" || phases(failed[0]) != "connect" || slices.Contains(f.calls, "rs2 diff") {
		t.Errorf("failed %v, calls %v", failed, f.calls)
	}
}

func TestLastRunIsTheNewestRunThatChangedAHost(t *testing.T) {
	f := &fakeHosts{history: map[string][]protocol.Generation{
		"lvs01": {{N: 0, Kind: protocol.KindBaseline}, {N: 1, RunID: "a", Time: "2026-11-25T01:00:00Z"}, {N: 2, RunID: "b", Time: "2026-11-25T02:00:00Z"}},
		"rs1":   {{N: 0, Kind: protocol.KindBaseline}, {N: 1, RunID: "a", Time: "2026-11-25T01:00:00Z"}},
		"rs2":   {{N: 0, Kind: protocol.KindBaseline}, {N: 1, RunID: "b", Time: "2026-11-25T02:00:00Z"}},
	}}
	r := Open(hosts(), f.dial, Options{Parallel: 3})
	r.History()
	last, hs, err := r.LastRun()
	var names []string
	for _, h := range hs {
		names = append(names, h.Name())
	}
	if err != nil || last.RunID != "b" || strings.Join(names, ",") != "lvs01,rs2" {
		t.Errorf("last %+v hosts %v err %v", last, names, err)
	}
	empty := Open(hosts(), (&fakeHosts{}).dial, Options{})
	empty.History()
	if _, _, err := empty.LastRun(); err == nil {
		t.Error("a fleet tunplan never changed has a last run")
	}
}
