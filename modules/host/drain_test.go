package host

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tunplan/tunplan/modules/protocol"
)

// weightOf is rs's weight in the fake kernel's service of director().
func weightOf(f *fakeKernel, rip string) uint32 {
	return f.svcs["6/"+vip.String()+":80"].dests[rip+":80"].Weight
}

// A drain holds a destination at weight 0 across diff (held, not drift), apply and a reboot's
// restore, until undrain gives it its plan weight back.
func TestDrainHoldsUntilUndrain(t *testing.T) {
	dir, root := t.TempDir(), t.TempDir()
	f := newFake()
	e := bootEngine(t, f, dir, root, true)
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: director("wrr", 1, 3), RunID: "r1"})
	drain := []protocol.Drain{{Service: director("wrr", 1, 3).Services[0].Key(), Address: rip2, Port: 80, Realserver: "rs2"}}
	resp := mustHandle(t, e, protocol.Request{Op: protocol.OpDrain, Desired: director("wrr", 1, 3), Drains: drain, Actor: "ops@laptop"})
	if w := weightOf(f, rip2.String()); w != 0 || len(resp.Changes) != 1 || !strings.Contains(resp.Changes[0].Shown(), "weight=3 fwd=tunnel => weight=0") {
		t.Fatalf("drain: weight %d, changes %v", w, resp.Changes)
	}
	if st := resp.Status; st == nil || len(st.Drains) != 1 || st.Drains[0].Actor != "ops@laptop" || !st.Drains[0].Since.Equal(e.Now()) ||
		st.Services[0].Destinations[1].Weight != 0 {
		t.Fatalf("status after the drain: %+v", st)
	}
	diff := mustHandle(t, e, protocol.Request{Op: protocol.OpDiff, Desired: director("wrr", 1, 3)})
	want := []protocol.Held{{Service: drain[0].Service, Address: rip2, Port: 80, Weight: 3, By: protocol.HeldByDrain, Since: e.Now().UTC(), Reason: "drained by ops@laptop"}}
	if len(diff.Changes) != 0 || !slices.Equal(diff.Held, want) {
		t.Fatalf("diff: changes %v, held %+v", diff.Changes, diff.Held)
	}
	// A plan change elsewhere is applied; rs2 stays at 0, and the generation keeps its plan weight.
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: director("wrr", 2, 3), RunID: "r2"})
	if weightOf(f, rip1.String()) != 2 || weightOf(f, rip2.String()) != 0 {
		t.Fatalf("apply: rs1 %d, rs2 %d", weightOf(f, rip1.String()), weightOf(f, rip2.String()))
	}
	gens := mustHandle(t, e, protocol.Request{Op: protocol.OpHistory}).Generations
	if w := gens[len(gens)-1].State.Services[0].Destinations[1].Weight; w != 3 {
		t.Errorf("the generation records rs2 at %d, want its plan weight 3", w)
	}
	// A reboot: the restore brings rs2 back drained.
	rebooted := newFake()
	var log bytes.Buffer
	if err := bootEngine(t, rebooted, dir, root, true).Restore(&log, false); err != nil {
		t.Fatal(err)
	}
	if weightOf(rebooted, rip1.String()) != 2 || weightOf(rebooted, rip2.String()) != 0 || !strings.Contains(log.String(), rip2.String()+":80 held at weight 0: drained by ops@laptop") {
		t.Errorf("restore: rs1 %d, rs2 %d\n%s", weightOf(rebooted, rip1.String()), weightOf(rebooted, rip2.String()), log.String())
	}
	// Undrain gives the plan weight back, and forgets the drain.
	resp = mustHandle(t, e, protocol.Request{Op: protocol.OpUndrain, Desired: director("wrr", 2, 3), Drains: drain})
	if weightOf(f, rip2.String()) != 3 || len(resp.Status.Drains) != 0 {
		t.Errorf("undrain: rs2 %d, drains %+v", weightOf(f, rip2.String()), resp.Status.Drains)
	}
	if diff := mustHandle(t, e, protocol.Request{Op: protocol.OpDiff, Desired: director("wrr", 2, 3)}); len(diff.Changes)+len(diff.Held) != 0 {
		t.Errorf("diff after undrain: %+v", diff)
	}
}

// Undrain leaves at 0 a destination the watcher holds there: it comes back when it passes its checks.
func TestUndrainLeavesWhatTheWatcherHolds(t *testing.T) {
	f, e, _, _ := watcherEngine(t)
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: checked(1, 3), RunID: "r1"})
	drain := []protocol.Drain{{Service: checked(1, 3).Services[0].Key(), Address: rip2, Port: 80}}
	mustHandle(t, e, protocol.Request{Op: protocol.OpDrain, Desired: checked(1, 3), Drains: drain})
	writeReport(t, e, e.Now(), protocol.DestinationHealth{Address: rip1, Port: 80, Healthy: true},
		protocol.DestinationHealth{Address: rip2, Port: 80, Quiesced: true, Last: "connect: connection refused"})
	mustHandle(t, e, protocol.Request{Op: protocol.OpUndrain, Desired: checked(1, 3), Drains: drain})
	if w := weightOf(f, rip2.String()); w != 0 {
		t.Errorf("undrained but failing: weight %d, want 0", w)
	}
}

// Status reads the plan's services as the kernel has them, in the plan's order, without the probe
// services; one the kernel lacks is missing.
func TestStatus(t *testing.T) {
	_, e, _, _ := watcherEngine(t)
	want := checked(1, 3)
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: want, RunID: "r1"})
	writeReport(t, e, e.Now())
	other := protocol.Service{Protocol: "udp", Address: vip, Port: 53, Scheduler: "rr"}
	want.Services = append(want.Services, other, protocol.Service{Address: vip, FWMark: protocol.ProbeMarkBase, Scheduler: "rr"})
	st := mustHandle(t, e, protocol.Request{Op: protocol.OpStatus, Desired: want}).Status
	if st == nil || len(st.Services) != 2 || st.Services[0].Service != want.Services[0].Key() || st.Services[1].Service != other.Key() || !st.Services[1].Missing ||
		len(st.Services[0].Destinations) != 2 || st.Services[0].Destinations[1].Weight != 3 || st.Health == nil || !st.Fresh {
		t.Errorf("status: %+v", st)
	}
}

// A drains file that cannot be read fails diff, naming it, and doctor reports it with its repair.
func TestCorruptDrains(t *testing.T) {
	dir := t.TempDir()
	e := bootEngine(t, newFake(), dir, t.TempDir(), true)
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: director("rr", 1, 1), RunID: "r1"})
	path := filepath.Join(dir, protocol.DrainName)
	if err := os.WriteFile(path, []byte(`{"drains": [`), 0o600); err != nil {
		t.Fatal(err)
	}
	if resp := e.Handle(protocol.Request{Op: protocol.OpDiff, Desired: director("rr", 1, 1)}); !strings.Contains(resp.Error, path) {
		t.Errorf("diff: %q, want an error naming %s", resp.Error, path)
	}
	rep := mustHandle(t, e, protocol.Request{Op: protocol.OpDoctor}).Doctor
	if rep.Healthy() || rep.Problems[0].Path != path || !strings.Contains(rep.Problems[0].Fix, "tunplan drain") {
		t.Errorf("doctor: %+v", rep)
	}
}
