package fleet

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/tunplan/tunplan/inventory/target"
	"github.com/tunplan/tunplan/modules/protocol"
)

// toRecorder wraps the fake hosts and keeps the To of every rollback request, by host.
type toRecorder struct {
	*fakeHosts
	mu sync.Mutex
	to map[string]string // host: "N", or "previous" for a request without To
}

type toSession struct {
	Session
	rec  *toRecorder
	name string
}

func (t *toRecorder) dial(target target.Target) (Session, error) {
	s, err := t.fakeHosts.dial(target)
	if err != nil {
		return nil, err
	}
	return toSession{s, t, target.Name}, nil
}

func (s toSession) Run(req protocol.Request) (protocol.Response, error) {
	if req.Op == protocol.OpRollback {
		s.rec.mu.Lock()
		if s.rec.to == nil {
			s.rec.to = map[string]string{}
		}
		s.rec.to[s.name] = "previous"
		if req.To != nil {
			s.rec.to[s.name] = fmt.Sprint(*req.To)
		}
		s.rec.mu.Unlock()
	}
	return s.Session.Run(req)
}

func gen(n int, kind protocol.Kind, run, time string) protocol.Generation {
	return protocol.Generation{N: n, Kind: kind, RunID: run, Time: time, Actor: "alice@ops1"}
}

var base = protocol.Generation{N: 0, Kind: protocol.KindBaseline, Time: "2026-11-25T00:00:00Z"}

const (
	runA = "aaaa1111aaaa1111"
	runB = "bbbb2222bbbb2222"
	runC = "cccc3333cccc3333"
	t1   = "2026-11-25T01:00:00Z"
	t2   = "2026-11-25T02:00:00Z"
	t3   = "2026-11-25T03:00:00Z"
)

// The issue's fleet: run A changed lvs01 and rs1; run B added rs2 and changed lvs01 again. rs2's
// generation 1 is run B, lvs01's is run A.
func issueHistory() map[string][]protocol.Generation {
	return map[string][]protocol.Generation{
		"lvs01": {base, gen(1, protocol.KindApply, runA, t1), gen(2, protocol.KindApply, runB, t2)},
		"rs1":   {base, gen(1, protocol.KindApply, runA, t1)},
		"rs2":   {base, gen(1, protocol.KindApply, runB, t2)},
	}
}

func openHistory(t *testing.T, history map[string][]protocol.Generation) (*Run, *toRecorder) {
	t.Helper()
	rec := &toRecorder{fakeHosts: &fakeHosts{history: history}}
	r := Open(hosts(), rec.dial, Options{Parallel: 3})
	t.Cleanup(r.Close)
	r.History()
	if f := r.Failed(); len(f) > 0 {
		t.Fatalf("history failed: %v", f[0].Err())
	}
	return r, rec
}

// byName shows targets as "host=N" sorted, for comparison.
func byName(targets map[*HostRun]int) string {
	var out []string
	for h, n := range targets {
		out = append(out, fmt.Sprintf("%s=%d", h.Name(), n))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func hostsOf(ri RunInfo) string {
	var out []string
	for _, h := range slices.Sorted(maps.Keys(ri.Hosts)) {
		out = append(out, fmt.Sprintf("%s=%d", h, ri.Hosts[h]))
	}
	return strings.Join(out, " ")
}

func TestRunsAreListedNewestFirstAcrossHosts(t *testing.T) {
	r, _ := openHistory(t, issueHistory())
	runs := r.Runs()
	if len(runs) != 2 {
		t.Fatalf("runs %+v", runs)
	}
	want := []struct{ id, time, hosts string }{{runB, t2, "lvs01=2 rs2=1"}, {runA, t1, "lvs01=1 rs1=1"}}
	for i, w := range want {
		if g := runs[i]; g.ID != w.id || g.Time != w.time || hostsOf(g) != w.hosts || g.Actor != "alice@ops1" || g.Kind != protocol.KindApply {
			t.Errorf("run %d: %+v, want %s at %s on %s", i+1, g, w.id, w.time, w.hosts)
		}
	}
}

// A run's time is the latest of its generations: a run that finished on one host after another
// run is the newer of the two.
func TestRunTimeIsItsLatestGeneration(t *testing.T) {
	r, _ := openHistory(t, map[string][]protocol.Generation{
		"lvs01": {base, gen(1, protocol.KindApply, runA, t1), gen(2, protocol.KindApply, runB, t2)},
		"rs1":   {base, gen(1, protocol.KindApply, runA, t3)},
	})
	runs := r.Runs()
	if len(runs) != 2 || runs[0].ID != runA || runs[0].Time != t3 || runs[1].ID != runB {
		t.Errorf("runs %+v, want A (latest at %s) before B", runs, t3)
	}
}

// Generation times are whole seconds: two runs of the same second are ordered as the hosts
// recorded them, not by their (random) ids.
func TestRunsOfTheSameSecondKeepTheHostsOrder(t *testing.T) {
	first, second := "ffff0000ffff0000", "0000ffff0000ffff"
	r, _ := openHistory(t, map[string][]protocol.Generation{
		"lvs01": {base, gen(1, protocol.KindApply, first, t1), gen(2, protocol.KindApply, second, t1)},
		"rs2":   {base, gen(1, protocol.KindApply, second, t1)},
	})
	runs := r.Runs()
	if len(runs) != 2 || runs[0].ID != second || runs[1].ID != first {
		t.Fatalf("runs %+v, want %s (newest) then %s", runs, second, first)
	}
	targets, run, err := r.Targets("2")
	if err != nil || run.ID != first || byName(targets) != "lvs01=1 rs2=0" {
		t.Errorf("--to 2: run %s targets %s err %v", run.ID, byName(targets), err)
	}
}

// The issue: rolling back to run A puts lvs01 to its generation 1, rs2 (which A did not know) to
// its generation 0, and leaves rs1, already at run A's generation, alone.
func TestTargetsPerHostGeneration(t *testing.T) {
	cases := []struct {
		sel, run, want string
	}{
		{"2", runA, "lvs01=1 rs2=0"},
		{runA, runA, "lvs01=1 rs2=0"},
		{"aaaa", runA, "lvs01=1 rs2=0"},
		{" aaaa1111 ", runA, "lvs01=1 rs2=0"},
		{"1", runB, ""}, // every host is already as of the newest run
		{runB, runB, ""},
		{"0", "", "lvs01=0 rs1=0 rs2=0"},
		{"00", "", "lvs01=0 rs1=0 rs2=0"},
	}
	for _, c := range cases {
		r, rec := openHistory(t, issueHistory())
		targets, run, err := r.Targets(c.sel)
		if err != nil || run.ID != c.run || byName(targets) != c.want {
			t.Errorf("--to %q: run %q targets %q err %v, want run %q targets %q", c.sel, run.ID, byName(targets), err, c.run, c.want)
			continue
		}
		r.RollbackTo(targets)
		var sent []string
		for h, to := range rec.to {
			sent = append(sent, h+"="+to)
		}
		sort.Strings(sent)
		if strings.Join(sent, " ") != c.want {
			t.Errorf("--to %q: requests %v, want %q", c.sel, sent, c.want)
		}
		for h := range targets {
			if res, ok := h.Result(Rollback); !ok || res.Err != nil {
				t.Errorf("--to %q: %s has no rollback result: %+v", c.sel, h.Name(), h.Results)
			}
		}
	}
}

// Rollbacks are runs too: after a rollback to run A, rolling back to run B redoes it, and the
// rollback run can itself be the target.
func TestRollbackRunsAreRuns(t *testing.T) {
	h := issueHistory()
	h["lvs01"] = append(h["lvs01"], gen(3, protocol.KindRollback, runC, t3))
	h["rs2"] = append(h["rs2"], gen(2, protocol.KindRollback, runC, t3))
	r, _ := openHistory(t, h)
	runs := r.Runs()
	if len(runs) != 3 || runs[0].ID != runC || runs[0].Kind != protocol.KindRollback || hostsOf(runs[0]) != "lvs01=3 rs2=2" {
		t.Fatalf("runs %+v", runs)
	}
	for sel, want := range map[string]string{"2": "lvs01=2 rs2=1", "3": "lvs01=1 rs2=0", "1": "", "0": "lvs01=0 rs1=0 rs2=0"} {
		if targets, _, err := r.Targets(sel); err != nil || byName(targets) != want {
			t.Errorf("--to %s: %q err %v, want %q", sel, byName(targets), err, want)
		}
	}
}

// A generation 0 is no run, a generation with no run id is a run of its own, a host with no
// history and a host that could not be read take no part.
func TestRunsSkipBaselinesAndUnreadHosts(t *testing.T) {
	f := &fakeHosts{history: map[string][]protocol.Generation{
		"lvs01": {base, {N: 1, Kind: protocol.KindApply, Time: t1}, gen(2, protocol.KindDestroy, runB, t2)},
		"rs1":   {base, {N: 1, Kind: protocol.KindApply, Time: t1}},
		"rs2":   {base, gen(1, protocol.KindApply, runA, t1)},
	}, unreach: map[string]bool{"rs2": true}}
	r := Open(hosts(), f.dial, Options{Parallel: 3})
	defer r.Close()
	r.History()
	var ids []string
	for _, ri := range r.Runs() {
		ids = append(ids, ri.ID+"("+hostsOf(ri)+")")
	}
	if got := strings.Join(ids, " "); got != runB+"(lvs01=2) rs1#1(rs1=1) lvs01#1(lvs01=1)" {
		t.Errorf("runs %s", got)
	}
	if targets, _, err := r.Targets("0"); err != nil || byName(targets) != "lvs01=0 rs1=0" {
		t.Errorf("--to 0: %s %v", byName(targets), err)
	}
	empty := Open(hosts(), (&fakeHosts{}).dial, Options{})
	defer empty.Close()
	empty.History()
	if targets, run, err := empty.Targets("0"); err != nil || len(targets) != 0 || run.ID != "" {
		t.Errorf("a fleet tunplan never changed: --to 0 gives %s %+v %v", byName(targets), run, err)
	}
	if _, _, err := empty.Targets("1"); err == nil || !strings.Contains(err.Error(), "tunplan has not changed these hosts") {
		t.Errorf("a fleet tunplan never changed: --to 1 gives %v", err)
	}
}

func TestTargetsRefusesWhatNamesNoSingleRun(t *testing.T) {
	h := issueHistory()
	h["rs1"] = append(h["rs1"], gen(2, protocol.KindApply, "aaaa9999aaaa9999", t3))
	cases := map[string]string{
		"":         "no run given",
		"   ":      "no run given",
		"3":        "", // three runs: 3 is the oldest
		"4":        "no run 4: the runs are numbered 1 (the newest) to 3, and 0 is before tunplan",
		"-5":       `no run "-5"`,
		"+1":       `no run "+1"`,
		"aaa":      `no run "aaa": give a run's number (0 to 3), or its id or at least its first 4 characters`,
		"aaaa":     `"aaaa" starts more than one run id (aaaa1111aaaa1111, aaaa9999aaaa9999)`,
		"aaaa9":    "",
		"zzzz":     `no run has an id starting "zzzz"`,
		"bbbb2223": `no run has an id starting "bbbb2223"`,
	}
	for sel, want := range cases {
		r, rec := openHistory(t, h)
		targets, _, err := r.Targets(sel)
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", sel, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: error %v, want %q", sel, err, want)
		case want != "" && targets != nil:
			t.Errorf("%q: targets %s with an error", sel, byName(targets))
		}
		if len(rec.to) != 0 {
			t.Errorf("%q: rollback sent %v", sel, rec.to)
		}
	}
}
