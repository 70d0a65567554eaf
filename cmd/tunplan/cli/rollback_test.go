package cli

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/tunplan/tunplan/inventory/fleet"
	"github.com/tunplan/tunplan/inventory/target"
	"github.com/tunplan/tunplan/modules/protocol"
)

// toHosts are fake hosts that also keep the To of every rollback request, by host.
type toHosts struct {
	*fakeHosts
	mu sync.Mutex
	to map[string]string // host: "N", or "previous" for a request without To
}

type toSession struct {
	fleet.Session
	h    *toHosts
	name string
}

func (f *toHosts) connect(t target.Target) (fleet.Session, error) {
	s, err := f.fakeHosts.connect(t)
	if err != nil {
		return nil, err
	}
	return toSession{s, f, t.Name}, nil
}

func (s toSession) Run(req protocol.Request) (protocol.Response, error) {
	if req.Op == protocol.OpRollback {
		s.h.mu.Lock()
		s.h.to[s.name] = "previous"
		if req.To != nil {
			s.h.to[s.name] = fmt.Sprint(*req.To)
		}
		s.h.mu.Unlock()
	}
	return s.Session.Run(req)
}

// sent is the rollback requests as "host=To", sorted.
func (f *toHosts) sent() string {
	var out []string
	for h, to := range f.to {
		out = append(out, h+"="+to)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

const (
	runA = "aaaa1111aaaa1111"
	runB = "bbbb2222bbbb2222"
)

// twoRuns is the fleet: run A changed lvs01 and shanghai; run B added beijing and changed
// lvs01 again, so beijing's generation 1 is run B where lvs01's is run A.
func twoRuns() *toHosts {
	g := func(n int, run, time string) protocol.Generation {
		return protocol.Generation{N: n, Kind: protocol.KindApply, RunID: run, Time: time, Actor: "alice@ops1", Changes: 1}
	}
	base := protocol.Generation{N: 0, Kind: protocol.KindBaseline, Time: "2026-11-25T00:59:00Z"}
	f := driftingHosts()
	f.history = map[string][]protocol.Generation{
		"lvs01":    {base, g(1, runA, "2026-11-25T01:00:00Z"), g(2, runB, "2026-11-25T02:00:00Z")},
		"shanghai": {base, g(1, runA, "2026-11-25T01:00:00Z")},
		"beijing":  {base, g(1, runB, "2026-11-25T02:00:01Z")},
	}
	return &toHosts{fakeHosts: f, to: map[string]string{}}
}

func runTo(t *testing.T, f *toHosts, args ...string) (string, string, int) {
	t.Helper()
	return runOn(t, f.connect, example, args...)
}

const twoRunsList = `  #  RUN               TIME                  KIND   BY          HOSTS CHANGED (generation)
  1  bbbb2222bbbb2222  2026-11-25T02:00:01Z  apply  alice@ops1  beijing (1), lvs01 (2)
  2  aaaa1111aaaa1111  2026-11-25T01:00:00Z  apply  alice@ops1  lvs01 (1), shanghai (1)
  0  before tunplan                                             every host (0)
`

func TestRollbackListShowsRunsNewestFirst(t *testing.T) {
	f := twoRuns()
	out, errOut, code := runTo(t, f, "rollback", "--list")
	if code != exitOK || out != twoRunsList || f.sent() != "" {
		t.Errorf("exit %d, rollbacks %q\n--- got\n%s\n--- want\n%s\n%s", code, f.sent(), out, twoRunsList, errOut)
	}
	empty := &toHosts{fakeHosts: &fakeHosts{}, to: map[string]string{}}
	if out, _, code := runTo(t, empty, "rollback", "--list"); code != exitOK || out != "No runs: tunplan has not changed these hosts.\n" {
		t.Errorf("no history: exit %d\n%s", code, out)
	}
}

// The issue: --to the first run puts lvs01 to its generation 1, beijing (which run A did not know)
// to its generation 0, and sends nothing to shanghai, already at run A's generation.
func TestRollbackToARunUsesEachHostsGeneration(t *testing.T) {
	for _, sel := range []string{"2", runA, "aaaa11"} {
		t.Run(sel, func(t *testing.T) {
			f := twoRuns()
			out, errOut, code := runTo(t, f, "rollback", "--to", sel)
			if code != exitOK || f.sent() != "beijing=0 lvs01=1" {
				t.Fatalf("exit %d, rollbacks %q\n%s\n%s", code, f.sent(), out, errOut)
			}
			for _, want := range []string{
				"Rolling back to the state after run 2: " + runA + " (apply at 2026-11-25T01:00:00Z by alice@ops1).\n",
				"beijing: generation 1 => 0\n", "lvs01: generation 2 => 1\n", "shanghai: already at generation 1: left alone\n",
				"Rollback complete!",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestRollbackToZeroAndToTheNewestRun(t *testing.T) {
	f := twoRuns()
	out, errOut, code := runTo(t, f, "rollback", "--to", "0")
	if code != exitOK || f.sent() != "beijing=0 lvs01=0 shanghai=0" || !strings.Contains(out, "Rolling back to before tunplan: every host to its generation 0.") {
		t.Errorf("--to 0: exit %d, rollbacks %q\n%s\n%s", code, f.sent(), out, errOut)
	}
	f = twoRuns()
	out, errOut, code = runTo(t, f, "rollback", "--to", "1")
	if code != exitOK || f.sent() != "" || !strings.Contains(out, "lvs01: already at generation 2: left alone") || !strings.Contains(out, "Nothing to roll back.") {
		t.Errorf("--to 1: exit %d, rollbacks %q\n%s\n%s", code, f.sent(), out, errOut)
	}
}

// Without --to, rollback still undoes the last run on the hosts it changed: each to its previous
// generation.
func TestRollbackWithoutToUndoesTheLastRun(t *testing.T) {
	f := twoRuns()
	out, errOut, code := runTo(t, f, "rollback")
	if code != exitOK || f.sent() != "beijing=previous lvs01=previous" || !strings.Contains(out, "shanghai: not changed by the last run ("+runB) {
		t.Errorf("exit %d, rollbacks %q\n%s\n%s", code, f.sent(), out, errOut)
	}
}

// A --to that names no single run fails before any change, naming the runs.
func TestRollbackToWithoutAValidRunChangesNothing(t *testing.T) {
	for _, c := range []struct{ sel, want string }{
		{"zzzz", `--to zzzz: no run has an id starting "zzzz"; the runs, newest first:`},
		{"3", "--to 3: no run 3: the runs are numbered 1 (the newest) to 2, and 0 is before tunplan"},
		{"", "--to : no run given"},
		{"aa", `--to aa: no run "aa": give a run's number (0 to 2), or its id or at least its first 4 characters`},
	} {
		t.Run(c.sel, func(t *testing.T) {
			f := twoRuns()
			out, errOut, code := runTo(t, f, "rollback", "--to", c.sel)
			if code != exitError || f.sent() != "" || !strings.Contains(errOut, c.want) {
				t.Fatalf("exit %d, rollbacks %q\nstdout:\n%s\nstderr:\n%s", code, f.sent(), out, errOut)
			}
			for _, want := range []string{runA, runB, "0  before tunplan"} {
				if !strings.Contains(errOut, want) {
					t.Errorf("the error does not name %q:\n%s", want, errOut)
				}
			}
		})
	}
	f := twoRuns()
	if _, errOut, code := runTo(t, f, "rollback", "--to", "1", "--list"); code != exitError || len(f.calls) != 0 || !strings.Contains(errOut, "list") {
		t.Errorf("--to with --list: exit %d, calls %v\n%s", code, f.calls, errOut)
	}
}

// A host that cannot be read stops a rollback --to before any host is changed.
func TestRollbackToStopsOnAnUnreadableHost(t *testing.T) {
	f := twoRuns()
	f.fail = map[string]error{"beijing": fmt.Errorf("host beijing: connect 198.19.0.22:22: connection refused")}
	_, errOut, code := runTo(t, f, "rollback", "--to", "2")
	if code != exitError || f.sent() != "" || !strings.Contains(errOut, "connection refused") {
		t.Errorf("exit %d, rollbacks %q\n%s", code, f.sent(), errOut)
	}
}
