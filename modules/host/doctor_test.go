package host

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tunplan/tunplan/modules/protocol"
)

// twoApplies is a host with generations 0 (before tunplan), 1 (rr) and 2 (wrr), and its last-run
// record.
func twoApplies(t *testing.T, e *Engine) {
	t.Helper()
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: director("rr", 1, 1), RunID: "r1"})
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: director("wrr", 3, 1), RunID: "r2"})
}

// cut truncates generation n's file to its first bytes, as a crash before its data reached the disk
// may leave it, and returns its path.
func cut(t *testing.T, e *Engine, n, keep int) string {
	t.Helper()
	path := e.genPath(n)
	if err := os.Truncate(path, int64(keep)); err != nil {
		t.Fatal(err)
	}
	return path
}

// An unreadable latest generation is an error of every operation that reads it, naming the file,
// what is wrong and what to run; a diff no longer takes it for "nothing owned" and says "no drift".
func TestUnreadableGenerationIsAnErrorNamingTheFile(t *testing.T) {
	for _, c := range []struct {
		name  string
		keep  int
		issue string
	}{
		{"truncated", 20, "unexpected end of JSON input"},
		{"empty", 0, "the file is empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFake()
			e := newEngine(t, f)
			twoApplies(t, e)
			path := cut(t, e, 2, c.keep)
			to := 1
			for _, req := range []protocol.Request{
				{Op: protocol.OpDiff, Desired: director("wrr", 3, 1)},
				{Op: protocol.OpDiff, Desired: director("wrr", 3, 1), Claim: true},
				{Op: protocol.OpApply, Desired: director("wrr", 3, 1), RunID: "r3"},
				{Op: protocol.OpRollback, RunID: "r3"},
				{Op: protocol.OpRollback, To: &to, RunID: "r3"},
				{Op: protocol.OpHistory},
				{Op: protocol.OpDestroy, DryRun: true},
				{Op: protocol.OpDestroy, RunID: "r3"},
			} {
				resp := e.Handle(req)
				want := "generation 2 (" + path + ") is unreadable: " + c.issue + "; run `tunplan doctor` to see how to repair it"
				if !strings.Contains(resp.Error, want) || len(resp.Changes) != 0 {
					t.Errorf("%s (claim %v, dry run %v): error %q, %d changes; want an error with %q", req.Op, req.Claim, req.DryRun, resp.Error, len(resp.Changes), want)
				}
			}
			if f.svcs["6/198.18.48.180:80"].svc.Scheduler != "wrr" {
				t.Errorf("the host changed:\n%s", f.dump())
			}
		})
	}
}

// An unreadable older generation fails only what reads it: history, and a rollback to it.
func TestUnreadableOlderGenerationFailsWhatReadsIt(t *testing.T) {
	e := newEngine(t, newFake())
	twoApplies(t, e)
	path := cut(t, e, 1, 5)
	if d := mustHandle(t, e, protocol.Request{Op: protocol.OpDiff, Desired: director("wrr", 3, 1)}); len(d.Changes) != 0 {
		t.Errorf("diff: %v", addresses(d.Changes))
	}
	for _, req := range []protocol.Request{{Op: protocol.OpHistory}, {Op: protocol.OpRollback, RunID: "r3"}} {
		if resp := e.Handle(req); !strings.Contains(resp.Error, "generation 1 ("+path+") is unreadable") {
			t.Errorf("%s: error %q", req.Op, resp.Error)
		}
	}
}

// At boot, an unreadable latest generation gives way to the newest readable one, with a line that
// names the file; with none readable, the restore fails naming each.
func TestRestoreFallsBackToTheNewestReadableGeneration(t *testing.T) {
	dir, root := t.TempDir(), t.TempDir()
	e := bootEngine(t, newFake(), dir, root, true)
	twoApplies(t, e)
	path2 := cut(t, e, 2, 40)
	rebooted := newFake()
	var log bytes.Buffer
	if err := bootEngine(t, rebooted, dir, root, true).Restore(&log, false); err != nil {
		t.Fatalf("restore: %v\n%s", err, log.String())
	}
	s := rebooted.svcs["6/198.18.48.180:80"]
	if s == nil || s.svc.Scheduler != "rr" || s.dests["198.18.1.183:80"].Weight != 1 || !rebooted.links["tunl0"].up {
		t.Errorf("after restore, want generation 1's state:\n%s", rebooted.dump())
	}
	want := "tunplan-helper restore: generation 2 (" + path2 + ") is unreadable: unexpected end of JSON input; restoring generation 1 instead, the newest that can be read; run `tunplan doctor` to see how to repair it\n"
	if !strings.HasPrefix(log.String(), want) || !strings.Contains(log.String(), "tunplan-helper restore: generation 1 (apply of run r1") {
		t.Errorf("log:\n%s\nwant it to start with:\n%s", log.String(), want)
	}

	path0, path1 := cut(t, e, 0, 0), cut(t, e, 1, 3)
	log.Reset()
	err := bootEngine(t, newFake(), dir, root, true).Restore(&log, false)
	if err == nil {
		t.Fatalf("restore with no readable generation succeeded:\n%s", log.String())
	}
	for _, p := range []string{path2, path1, path0} {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not name %s", err, p)
		}
	}
	if !strings.HasPrefix(err.Error(), "no generation can be read: ") || !strings.HasSuffix(err.Error(), repairHint) {
		t.Errorf("error %q", err)
	}
}

func doctor(t *testing.T, e *Engine) protocol.DoctorReport {
	t.Helper()
	resp := mustHandle(t, e, protocol.Request{Op: protocol.OpDoctor, Host: "lvs01"})
	if resp.Doctor == nil {
		t.Fatalf("doctor answered without a report: %+v", resp)
	}
	return *resp.Doctor
}

// doctor reads every state file and reports the ones it cannot use, each with its repair; the
// repair it gives for a generation works: once it is done, diff and apply converge the host again.
// It takes no lock: it answers while another run holds the host.
func TestDoctorReportsUnreadableStateWithTheFix(t *testing.T) {
	f := newFake()
	e := newEngine(t, f)
	if rep := doctor(t, e); !rep.Healthy() || rep.Checked != 0 {
		t.Errorf("host tunplan never changed: %+v", rep)
	}
	twoApplies(t, e)
	release := holdLock(t, e)
	if rep := doctor(t, e); !rep.Healthy() || rep.Checked != 4 {
		t.Errorf("healthy host: %+v, want 4 files (3 generations, the last-run record) and no problem", rep)
	}
	release()

	gen := cut(t, e, 2, 30)
	lastRun := filepath.Join(e.Dir, "last-run.json")
	if err := os.WriteFile(lastRun, []byte("{\"op\": \"apply\", \"ti"), 0o600); err != nil {
		t.Fatal(err)
	}
	rep := doctor(t, e)
	if rep.Checked != 4 || len(rep.Problems) != 2 {
		t.Fatalf("report %+v, want 2 problems in 4 files", rep)
	}
	p := rep.Problems[0]
	mv := "mv " + gen + " " + gen + ".corrupt"
	if p.Path != gen || p.Issue != "unexpected end of JSON input" || !strings.Contains(p.Fix, mv) ||
		!strings.Contains(p.Fix, "tunplan diff") || !strings.Contains(p.Fix, "tunplan apply") || !strings.Contains(p.Fix, "no longer known as tunplan's") {
		t.Errorf("generation problem %+v", p)
	}
	if p := rep.Problems[1]; p.Path != lastRun || !strings.Contains(p.Fix, "rm "+lastRun) {
		t.Errorf("last-run problem %+v", p)
	}

	// The repairs as given: the generation moved aside, the record removed.
	if err := os.Rename(gen, gen+".corrupt"); err != nil {
		t.Fatal(err)
	}
	os.Remove(lastRun)
	d := mustHandle(t, e, protocol.Request{Op: protocol.OpDiff, Desired: director("wrr", 3, 1)})
	if len(d.Changes) != 0 {
		t.Errorf("diff once repaired: %v", addresses(d.Changes))
	}
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: director("wrr", 2, 1), RunID: "r3"})
	if rep := doctor(t, e); !rep.Healthy() || rep.Checked != 4 {
		t.Errorf("after the repair and an apply: %+v", rep)
	}
}
