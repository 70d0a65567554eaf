package host

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tunplan/tunplan/modules/protocol"
)

// checked is the director with a TCP check on its service.
func checked(w1, w2 uint32) protocol.State {
	st := director("rr", w1, w2)
	st.Checks = []protocol.HealthCheck{{Service: st.Services[0].Key(), Type: protocol.CheckTCP, Port: 80, VIP: vip, IntervalMS: 1000, TimeoutMS: 500, Fall: 3, Rise: 2,
		Destinations: []protocol.CheckedDestination{{Address: rip1, Port: 80, Weight: w1, Mark: protocol.ProbeMarkBase}, {Address: rip2, Port: 80, Weight: w2, Mark: protocol.ProbeMarkBase + 1}}}}
	return st
}

// watcherEngine is an engine whose starts and stops of the watcher are recorded, with the
// watcher's report at its HealthFile.
func watcherEngine(t *testing.T) (*fakeKernel, *Engine, string, *[]string) {
	f := newFake()
	root := t.TempDir()
	e := bootEngine(t, f, filepath.Join(t.TempDir(), "state"), root, true)
	var calls []string
	e.Watcher = func(start bool) error {
		calls = append(calls, map[bool]string{true: "start", false: "stop"}[start])
		return nil
	}
	e.HealthFile = filepath.Join(t.TempDir(), "health.json")
	return f, e, root, &calls
}

// writeReport writes the watcher's report with heartbeat, its destinations as given.
func writeReport(t *testing.T, e *Engine, heartbeat time.Time, dests ...protocol.DestinationHealth) {
	t.Helper()
	h := protocol.Health{Heartbeat: heartbeat, Services: []protocol.ServiceHealth{{Service: checked(1, 1).Services[0].Key(), Destinations: dests}}}
	b, _ := json.Marshal(h)
	if err := os.WriteFile(e.HealthFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// The watcher's files come and go with the checks, and so does the watcher: started with its new
// unit, left running when only the checks change (it reads them again itself), stopped when they
// are gone.
func TestWatcherFilesAndUnit(t *testing.T) {
	_, e, root, calls := watcherEngine(t)
	first := mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: checked(1, 1), RunID: "r1"})
	if c := first.Changes[len(first.Changes)-1]; c.Address != "watcher tunplan-watch" || c.Shown() != "its unit changes => restarted" {
		t.Errorf("the last change is %s %s", c.Address, c.Shown())
	}
	var spec protocol.WatchSpec
	if err := json.Unmarshal([]byte(read(t, root, protocol.WatchConfig)), &spec); err != nil || len(spec.Checks) != 1 || spec.Checks[0].Destinations[1].Mark != protocol.ProbeMarkBase+1 {
		t.Fatalf("watch config: %v %+v", err, spec)
	}
	if unit := read(t, root, protocol.WatchUnit); !strings.Contains(unit, "\nExecStart="+testHelper+" watch\n") || !strings.Contains(unit, "Restart=always") {
		t.Errorf("unit:\n%s", unit)
	}
	if l, err := os.Readlink(filepath.Join(root, protocol.WatchLink)); err != nil || l != protocol.WatchUnit {
		t.Errorf("link %q %v", l, err)
	}
	writeReport(t, e, e.Now()) // the watcher runs
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: checked(1, 2), RunID: "r2"})
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: director("rr", 1, 2), RunID: "r3"})
	if want := []string{"start", "stop"}; !slices.Equal(*calls, want) {
		t.Errorf("watcher calls %q, want %q", *calls, want)
	}
	for _, p := range []string{protocol.WatchConfig, protocol.WatchUnit, protocol.WatchLink} {
		if _, err := os.Lstat(filepath.Join(root, p)); !os.IsNotExist(err) {
			t.Errorf("%s still there (%v)", p, err)
		}
	}
}

// A destination the watcher holds at weight 0 is no drift while its report is fresh: diff shows
// it held and no change, apply leaves it at 0, and the generation keeps its plan weight. A stale
// report holds nothing: the weight is drift again, and so is the watcher, which apply starts.
func TestHeldWeightsAreRuntimeState(t *testing.T) {
	f, e, _, calls := watcherEngine(t)
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: checked(1, 3), RunID: "r1"})
	key := "6/" + vip.String() + ":80"
	d := f.svcs[key].dests[rip2.String()+":80"]
	d.Weight = 0 // as the watcher sets it
	f.svcs[key].dests[rip2.String()+":80"] = d
	since := e.Now().Add(-time.Minute)
	report := func(heartbeat time.Time) {
		writeReport(t, e, heartbeat, protocol.DestinationHealth{Address: rip1, Port: 80, Healthy: true, Since: since},
			protocol.DestinationHealth{Address: rip2, Port: 80, Quiesced: true, Since: since, Last: "connect: connection refused"})
	}
	report(e.Now().Add(-time.Second))
	diff := mustHandle(t, e, protocol.Request{Op: protocol.OpDiff, Desired: checked(1, 3)})
	want := []protocol.Held{{Service: checked(1, 3).Services[0].Key(), Address: rip2, Port: 80, Weight: 3, By: protocol.HeldByHealth, Since: since, Reason: "connect: connection refused"}}
	if len(diff.Changes) != 0 || !slices.Equal(diff.Held, want) {
		t.Fatalf("diff: changes %v, held %+v", diff.Changes, diff.Held)
	}
	// A plan change elsewhere (rs1's weight) is applied; rs2 stays held.
	applied := mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: checked(2, 3), RunID: "r2"})
	if w := f.svcs[key].dests[rip2.String()+":80"].Weight; w != 0 || len(applied.Held) != 1 || len(applied.Changes) != 2 {
		t.Fatalf("apply: rs2 weight %d, %+v", w, applied)
	}
	gens := mustHandle(t, e, protocol.Request{Op: protocol.OpHistory}).Generations
	last := gens[len(gens)-1].State
	if last.Services[0].Destinations[1].Weight != 3 || len(last.Checks) != 1 {
		t.Errorf("the generation records %+v, want rs2's plan weight 3 and the checks", last.Services[0].Destinations)
	}
	// Stale: the watcher stopped reporting 5 s ago (more than three intervals of 1 s and a second).
	report(e.Now().Add(-5 * time.Second))
	stale := mustHandle(t, e, protocol.Request{Op: protocol.OpDiff, Desired: checked(2, 3)})
	if len(stale.Held) != 0 || len(stale.Changes) != 2 || !strings.Contains(stale.Changes[0].Shown(), "weight=0 fwd=tunnel => weight=3") ||
		stale.Changes[1].Shown() != "stale (last report 2026-11-24T23:59:55Z) => running" {
		t.Errorf("stale report: %+v", stale)
	}
	// The stale watcher is drift, and apply starts it again.
	*calls = nil
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: checked(2, 3), RunID: "r3"})
	if !slices.Equal(*calls, []string{"start"}) {
		t.Errorf("watcher calls %q, want one start", *calls)
	}
}

// With on_failure = "remove", a destination the watcher removed is no drift while its report is
// fresh: diff shows it held (removed), apply leaves it out, and the generation records it as the
// plan has it, so a restore brings it back.
func TestRemovedDestinationsAreRuntimeState(t *testing.T) {
	f, e, _, _ := watcherEngine(t)
	want := checked(1, 3)
	want.Checks[0].OnFailure = protocol.Remove
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: want, RunID: "r1"})
	key := "6/" + vip.String() + ":80"
	delete(f.svcs[key].dests, rip2.String()+":80") // as the watcher removes it
	writeReport(t, e, e.Now(), protocol.DestinationHealth{Address: rip1, Port: 80, Healthy: true},
		protocol.DestinationHealth{Address: rip2, Port: 80, Quiesced: true, Last: "connect: connection refused"})
	diff := mustHandle(t, e, protocol.Request{Op: protocol.OpDiff, Desired: want})
	if len(diff.Changes) != 0 || len(diff.Held) != 1 || !diff.Held[0].Removed || diff.Held[0].Weight != 3 {
		t.Fatalf("diff: changes %v, held %+v", diff.Changes, diff.Held)
	}
	want.Services[0].Destinations[0].Weight = 2
	want.Checks[0].Destinations[0].Weight = 2
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: want, RunID: "r2"})
	if _, in := f.svcs[key].dests[rip2.String()+":80"]; in || weightOf(f, rip1.String()) != 2 {
		t.Errorf("apply: rs2 in the kernel %v, rs1 weight %d", in, weightOf(f, rip1.String()))
	}
	gens := mustHandle(t, e, protocol.Request{Op: protocol.OpHistory}).Generations
	if ds := gens[len(gens)-1].State.Services[0].Destinations; len(ds) != 2 || ds[1].Address != rip2 || ds[1].Weight != 3 {
		t.Errorf("the generation records %+v, want rs2 at its plan weight 3", ds)
	}
}
