package cli

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tunplan/tunplan/cmd/tunplan/helperbin"
	"github.com/tunplan/tunplan/inventory/fleet"
	"github.com/tunplan/tunplan/inventory/target"
	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/protocol"
)

var update = flag.Bool("update", false, "rewrite golden files")

const example = "../../../examples/two-region/tunplan.hcl"

// fakeHosts stands in for the SSH transport: each host answers from a table, and every request is
// recorded in the order the hosts received them.
type fakeHosts struct {
	mu       sync.Mutex
	changes  map[string][]change.Change // what diff reports per host
	fail     map[string]error           // hosts that cannot be reached
	applyErr map[string]string          // hosts whose apply fails
	claimErr map[string]string          // hosts whose claiming diff fails (another run has them)
	calls    []string                   // "host op phase"
	history  map[string][]protocol.Generation
	held     map[string][]protocol.Held // what a host's watcher holds at weight 0
	// status answers status, drain and undrain (nil: no status).
	status func(host string, req protocol.Request) *protocol.Status
}

func (f *fakeHosts) connect(t target.Target) (fleet.Session, error) {
	if err := f.fail[t.Name]; err != nil {
		return nil, err
	}
	return fakeSession{f, t.Name}, nil
}

type fakeSession struct {
	f    *fakeHosts
	name string
}

func (s fakeSession) Close() error { return nil }

func (s fakeSession) Run(req protocol.Request) (protocol.Response, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	op := string(req.Op)
	if req.Claim {
		op = "claim"
	}
	s.f.calls = append(s.f.calls, strings.TrimSpace(s.name+" "+op+" "+string(req.Phase)))
	if e := s.f.claimErr[s.name]; e != "" && req.Claim {
		return protocol.Response{Host: s.name, Error: e}, nil
	}
	resp := protocol.Response{Host: s.name, Changes: s.f.changes[s.name], Generations: s.f.history[s.name], Held: s.f.held[s.name]}
	if s.f.status != nil {
		resp.Status = s.f.status(s.name, req)
	}
	if req.Op == protocol.OpApply {
		if e := s.f.applyErr[s.name]; e != "" {
			return protocol.Response{Host: s.name, Error: e, Outcome: protocol.Restored}, nil
		}
		resp.Outcome, resp.Generation = protocol.Applied, 1
		if kept := byPhase(resp.Changes, req.Phase); len(kept) == 0 {
			resp.Outcome, resp.Changes = protocol.Unchanged, nil // as the helper answers a phase with nothing to do
		}
	}
	return resp, nil
}

func byPhase(cs []change.Change, p protocol.Phase) []change.Change {
	var out []change.Change
	for _, c := range cs {
		if p == protocol.PhaseAll || (p == protocol.PhaseRemove) == (c.Action == change.Delete) {
			out = append(out, c)
		}
	}
	return out
}

func runCLI(t *testing.T, f *fakeHosts, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	io := &IOStreams{In: bufio.NewReader(strings.NewReader(stdin)), Out: &out, ErrOut: &errOut}
	code := run(io, f.connect, nil, args)
	return out.String(), errOut.String(), code
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (rerun with -update if intended)\n--- want\n%s\n--- got\n%s", name, want, got)
	}
}

func driftingHosts() *fakeHosts {
	return &fakeHosts{changes: map[string][]change.Change{
		"lvs01": {
			{Module: "ipvs", Address: "ipvs tcp/198.18.48.180:80 -> 198.18.1.183:80", Action: change.Create, After: "weight=1 fwd=tunnel"},
			{Module: "ipvs", Address: "ipvs tcp/198.18.48.180:80 -> 198.18.10.182:80", Action: change.Update, Before: "weight=7 fwd=tunnel", After: "weight=1 fwd=tunnel"},
			{Module: "ipvs", Address: "ipvs tcp/198.18.48.180:80 -> 198.18.10.99:80", Action: change.Delete, Before: "weight=1 fwd=tunnel"},
		},
		"shanghai": {
			{Module: "sysctl", Address: "sysctl net.ipv4.conf.all.rp_filter", Action: change.Update, Before: "1", After: "0"},
		},
	}}
}

func TestDiff(t *testing.T) {
	cases := []struct {
		name     string
		hosts    *fakeHosts
		args     []string
		wantCode int
		golden   string
		stderr   string
	}{
		{"drift", driftingHosts(), []string{"diff"}, exitDrift, "diff_drift.txt", ""},
		{"drift json", driftingHosts(), []string{"diff", "--json"}, exitDrift, "diff_drift.json", ""},
		{"match", &fakeHosts{}, []string{"diff"}, exitOK, "diff_match.txt", ""},
		{"limited to one host", driftingHosts(), []string{"diff", "--hosts", "beijing"}, exitOK, "diff_limit.txt", ""},
		{"unreachable host", &fakeHosts{fail: map[string]error{"beijing": errors.New("host beijing: connect 198.19.0.22:22: connection refused")}},
			[]string{"diff"}, exitError, "diff_unreachable.txt", "Error: host beijing: connect 198.19.0.22:22: connection refused"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, c.hosts, "", append(c.args, "-f", example)...)
			if code != c.wantCode {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, c.wantCode, out, errOut)
			}
			if !strings.Contains(errOut, c.stderr) {
				t.Errorf("stderr %q lacks %q", errOut, c.stderr)
			}
			golden(t, c.golden, out)
		})
	}
}

func TestApplyOrdersRealserversAroundDirectors(t *testing.T) {
	f := driftingHosts()
	f.changes["beijing"] = []change.Change{
		{Module: "tunnel", Address: "tunnel tunl0 198.18.48.180/32", Action: change.Create, After: "present"},
		{Module: "tunnel", Address: "tunnel tunl0 198.18.48.99/32", Action: change.Delete, Before: "present"},
	}
	out, errOut, code := runCLI(t, f, "", "apply", "--auto-approve", "-f", example)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	applies := []string{}
	for _, c := range f.calls {
		if strings.Contains(c, " apply") {
			applies = append(applies, c)
		}
	}
	// The realservers' add phase (either order between them) comes first, then the director, then
	// the remove phase, only for the realserver that has something to remove.
	want := map[int][]string{0: {"beijing apply add", "shanghai apply add"}, 1: {"beijing apply add", "shanghai apply add"},
		2: {"lvs01 apply"}, 3: {"beijing apply remove"}}
	if len(applies) != len(want) {
		t.Fatalf("apply calls %v", applies)
	}
	for i, c := range applies {
		if !contains(want[i], c) {
			t.Errorf("apply call %d is %q, want one of %v (all: %v)", i, c, want[i], applies)
		}
	}
	golden(t, "apply_ok.txt", out)
}

// TestApplyClaimsTheFirstHostAlone: an apply's diff claims the first host by name before the
// others, so two runs of one plan meet there; a run turned away there claims no other host and
// changes nothing.
func TestApplyClaimsTheFirstHostAlone(t *testing.T) {
	f := driftingHosts()
	if out, errOut, code := runCLI(t, f, "", "apply", "--auto-approve", "-f", example); code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if len(f.calls) < 3 || f.calls[0] != "beijing claim" || !contains(f.calls[1:3], "lvs01 claim") || !contains(f.calls[1:3], "shanghai claim") {
		t.Errorf("calls %v, want beijing's claim first, then lvs01's and shanghai's", f.calls)
	}

	f = driftingHosts()
	f.claimErr = map[string]string{"beijing": "host is locked by another tunplan run (run 1f2e since 2026-11-25T00:00:00Z by alice@ops1, connected from 198.19.0.3:40122)"}
	_, errOut, code := runCLI(t, f, "", "apply", "--auto-approve", "-f", example)
	if code != exitError || !strings.Contains(errOut, "Error: host beijing: host is locked by another tunplan run (run 1f2e") {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}
	if want := []string{"beijing claim", "lvs01 diff", "shanghai diff"}; len(f.calls) != 3 || f.calls[0] != want[0] || !contains(f.calls[1:], want[1]) || !contains(f.calls[1:], want[2]) {
		t.Errorf("calls %v, want %v (in any order after the first)", f.calls, want)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestApplyFailureNamesHostsAndStopsLaterPhases(t *testing.T) {
	f := driftingHosts()
	f.applyErr = map[string]string{"shanghai": "sysctl: write net.ipv4.conf.all.rp_filter: permission denied"}
	out, errOut, code := runCLI(t, f, "", "apply", "--auto-approve", "-f", example)
	if code != exitError {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, c := range f.calls {
		if strings.HasPrefix(c, "lvs01 apply") {
			t.Errorf("director was changed after a realserver failed: %v", f.calls)
		}
	}
	if !strings.Contains(errOut, "host shanghai: sysctl: write net.ipv4.conf.all.rp_filter: permission denied (outcome: restored)") {
		t.Errorf("stderr:\n%s", errOut)
	}
	if !strings.Contains(out, "Apply failed: 0 hosts changed") {
		t.Errorf("stdout:\n%s", out)
	}
}

func TestApplyAsksForConfirmation(t *testing.T) {
	for _, c := range []struct {
		name        string
		interactive bool
		answer      string
		wantApply   bool
		wantCode    int
		wantOut     string
	}{
		{"yes", true, "yes\n", true, exitOK, "Apply complete! 2 hosts changed."},
		{"no", true, "no\n", false, exitOK, "Apply cancelled."},
		{"not a terminal", false, "", false, exitError, "Plan: 1 to add, 2 to change, 1 to destroy."},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := driftingHosts()
			var out, errOut bytes.Buffer
			io := &IOStreams{In: bufio.NewReader(strings.NewReader(c.answer)), Out: &out, ErrOut: &errOut, Interactive: c.interactive}
			code := run(io, f.connect, nil, []string{"apply", "-f", example})
			applied := strings.Contains(strings.Join(f.calls, ","), "apply")
			if code != c.wantCode || applied != c.wantApply || !strings.Contains(out.String(), c.wantOut) {
				t.Errorf("code %d applied %v\n%s\n%s", code, applied, out.String(), errOut.String())
			}
		})
	}
}

func TestNoChangesIsSaid(t *testing.T) {
	f := &fakeHosts{}
	out, _, code := runCLI(t, f, "", "apply", "--auto-approve", "-f", example)
	if code != exitOK || !strings.Contains(out, "No changes. 3 hosts match the plan.") {
		t.Errorf("exit %d:\n%s", code, out)
	}
	for _, c := range f.calls {
		if strings.Contains(c, "apply") {
			t.Errorf("apply sent with nothing to change: %v", f.calls)
		}
	}
}

func TestValidate(t *testing.T) {
	out, _, code := runCLI(t, &fakeHosts{}, "", "validate", "-f", example)
	if code != exitOK || out != "The plan is valid: 3 hosts, 1 virtual service.\n" {
		t.Errorf("exit %d: %q", code, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.hcl")
	os.WriteFile(bad, []byte("host \"a\" {\n  role = \"director\"\n  adress = \"198.18.0.1\"\n}\n"), 0o644)
	_, errOut, code := runCLI(t, &fakeHosts{}, "", "validate", "-f", bad)
	if code != exitError || !strings.Contains(errOut, "bad.hcl:3:3: Unsupported argument\n    3 |   adress = \"198.18.0.1\"\n      |   ^^^^^^\n") {
		t.Errorf("exit %d, want 1 and a diagnostic at bad.hcl:3:3:\n%s", code, errOut)
	}
}

func TestAtomicApplyRollsBackChangedHosts(t *testing.T) {
	f := driftingHosts()
	f.changes["beijing"] = []change.Change{{Module: "tunnel", Address: "tunnel tunl0 198.18.48.180/32", Action: change.Create, After: "present"}}
	f.applyErr = map[string]string{"lvs01": "ipvs: add service: invalid argument"}
	out, errOut, code := runCLI(t, f, "", "apply", "--auto-approve", "--atomic", "-f", example)
	if code != exitError {
		t.Fatalf("exit %d, want 1", code)
	}
	var rollbacks []string
	for _, c := range f.calls {
		if strings.Contains(c, "rollback") {
			rollbacks = append(rollbacks, c)
		}
	}
	if strings.Join(rollbacks, ",") != "beijing rollback,shanghai rollback" && strings.Join(rollbacks, ",") != "shanghai rollback,beijing rollback" {
		t.Errorf("rollbacks %v, want both realservers (changed in the add phase) and not the failed director", rollbacks)
	}
	if !strings.Contains(out, "rolled back 2 hosts changed in this run: beijing, shanghai") || !strings.Contains(errOut, "ipvs: add service: invalid argument") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", out, errOut)
	}
}

func TestRollbackUndoesOnlyTheHostsOfTheLastRun(t *testing.T) {
	f := driftingHosts()
	f.history = map[string][]protocol.Generation{
		"lvs01":    {{N: 0, Kind: protocol.KindBaseline}, {N: 1, RunID: "a", Time: "2026-11-25T01:00:00Z"}, {N: 2, RunID: "b", Time: "2026-11-25T02:00:00Z"}},
		"shanghai": {{N: 0, Kind: protocol.KindBaseline}, {N: 1, RunID: "a", Time: "2026-11-25T01:00:00Z"}},
		"beijing":  {{N: 0, Kind: protocol.KindBaseline}, {N: 1, RunID: "b", Time: "2026-11-25T02:00:00Z"}},
	}
	out, errOut, code := runCLI(t, f, "", "rollback", "-f", example)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	var rolled []string
	for _, c := range f.calls {
		if strings.HasSuffix(c, "rollback") {
			rolled = append(rolled, strings.Fields(c)[0])
		}
	}
	sort.Strings(rolled)
	if strings.Join(rolled, ",") != "beijing,lvs01" || !strings.Contains(out, "shanghai: not changed by the last run (b at 2026-11-25T02:00:00Z): left alone") {
		t.Errorf("rolled back %v\n%s", rolled, out)
	}
	f.calls = nil
	if _, _, code := runCLI(t, f, "", "rollback", "--to", "0", "-f", example); code != exitOK || strings.Count(strings.Join(f.calls, ","), "rollback") != 3 {
		t.Errorf("--to 0: exit %d, calls %v", code, f.calls)
	}
}

// runOn runs tunplan with args on plan, reaching the hosts through connect, and returns its
// standard output, standard error and exit status.
func runOn(t *testing.T, connect fleet.Connector, plan string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	io := &IOStreams{In: bufio.NewReader(strings.NewReader("")), Out: &out, ErrOut: &errOut}
	code := run(io, connect, nil, append(args, "-f", plan))
	return out.String(), errOut.String(), code
}

// A tunplan built without its helpers (go install) says so once, before it contacts any host.
func TestNotReadyFailsBeforeContactingHosts(t *testing.T) {
	f := driftingHosts()
	var out, errOut bytes.Buffer
	io := &IOStreams{In: bufio.NewReader(strings.NewReader("")), Out: &out, ErrOut: &errOut}
	code := run(io, f.connect, func() error { return errors.New(helperbin.MissingFix) }, []string{"diff", "-f", example})
	if code != exitError || strings.Count(errOut.String(), "\n") != 1 || !strings.Contains(errOut.String(), "make build") || len(f.calls) != 0 {
		t.Errorf("exit %d, calls %v, stderr %q", code, f.calls, errOut.String())
	}
}

// A destination the director's watcher holds at weight 0, or a drain, is shown apart and is no drift: diff exits 0.
func TestDiffShowsHeldDestinationsAsNoDrift(t *testing.T) {
	f := &fakeHosts{held: map[string][]protocol.Held{"lvs01": {{
		Service: protocol.Key{Protocol: "tcp", Address: netip.MustParseAddr("198.18.48.180"), Port: 80},
		Address: netip.MustParseAddr("198.18.10.182"), Port: 80, Weight: 1, By: protocol.HeldByHealth,
		Since: time.Date(2026, 12, 3, 13, 2, 11, 0, time.UTC), Reason: "connect: connection refused\x1b[2J"}, {
		Service: protocol.Key{Protocol: "tcp", Address: netip.MustParseAddr("198.18.48.180"), Port: 80},
		Address: netip.MustParseAddr("198.18.10.183"), Port: 80, Weight: 2, By: protocol.HeldByDrain,
		Since: time.Date(2026, 12, 3, 13, 5, 0, 0, time.UTC), Reason: "drained by ops@laptop"}}}}
	out, errOut, code := runCLI(t, f, "", "diff", "-f", example)
	want := "# lvs01 (director, 198.19.0.11): no changes\n" +
		"  held back by health checks or drains (runtime state, not drift):\n" +
		"    tcp/198.18.48.180:80 -> 198.18.10.182:80  at weight 0 (plan weight 1), failing since 2026-12-03T13:02:11Z: connect: connection refused\\x1b[2J\n" +
		"    tcp/198.18.48.180:80 -> 198.18.10.183:80  at weight 0 (plan weight 2), drained by ops@laptop at 2026-12-03T13:05:00Z\n"
	if code != 0 || !strings.Contains(out, want) || !strings.Contains(out, "No drift") {
		t.Errorf("exit %d\n%s\nwant it to hold:\n%s\nstderr: %s", code, out, want, errOut)
	}
}
