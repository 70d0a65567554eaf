package host

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tunplan/tunplan/modules/protocol"
)

// holdLock takes the host lock as another run would, until the returned func is called.
func holdLock(t *testing.T, e *Engine) func() {
	t.Helper()
	if err := mkdirPrivate(e.Dir); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(e.Dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	return func() { lock.Close() }
}

func TestLockWaitTakesTheLockOnceFree(t *testing.T) {
	f := newFake()
	e := newEngine(t, f)
	release := holdLock(t, e)
	time.AfterFunc(300*time.Millisecond, release)
	resp := e.Handle(protocol.Request{Op: protocol.OpApply, Desired: director("rr", 1, 1), LockWaitMS: 5000})
	if resp.Error != "" || resp.Outcome != protocol.Applied {
		t.Fatalf("apply waiting for the lock: %+v", resp)
	}
}

func TestLockWaitGivesUp(t *testing.T) {
	f := newFake()
	e := newEngine(t, f)
	defer holdLock(t, e)()
	start := time.Now()
	resp := e.Handle(protocol.Request{Op: protocol.OpApply, Desired: director("rr", 1, 1), LockWaitMS: 300})
	if !strings.Contains(resp.Error, "locked by another tunplan run") || !strings.Contains(resp.Error, "gave up after waiting 300ms") || len(f.svcs) != 0 {
		t.Fatalf("response %+v", resp)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Errorf("gave up after %v, before the 300ms wait", waited)
	}
}

// TestLastRunIsToldUntilReported: the outcome is recorded before the helper answers; diff tells it
// until the helper has delivered its answer, and always tells a failed restore.
func TestLastRunIsToldUntilReported(t *testing.T) {
	f := newFake()
	e := newEngine(t, f)
	want := director("rr", 1, 1)
	if d := mustHandle(t, e, protocol.Request{Op: protocol.OpDiff, Desired: want}); d.LastRun != nil {
		t.Fatalf("fresh host has a last run: %+v", d.LastRun)
	}
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: want, RunID: "r1", Actor: "alice@ops1"})
	// A second engine is the next tunplan run: it only knows what the host recorded.
	next := &Engine{Dir: e.Dir, Kmod: f, Sysctl: fakeSysctl{f}, Tunnel: f, IPVS: e.IPVS, Now: e.Now}
	d := mustHandle(t, next, protocol.Request{Op: protocol.OpDiff, Desired: want})
	wantRun := protocol.LastRun{Op: protocol.OpApply, RunID: "r1", Actor: "alice@ops1", Time: "2026-11-25T00:00:00Z", Outcome: protocol.Applied, Changes: 9, Generation: 1}
	if d.LastRun == nil || *d.LastRun != wantRun {
		t.Fatalf("last run before delivery: %+v, want %+v", d.LastRun, wantRun)
	}
	e.Delivered()
	if d := mustHandle(t, next, protocol.Request{Op: protocol.OpDiff, Desired: want}); d.LastRun != nil {
		t.Errorf("last run told after delivery: %+v", d.LastRun)
	}
	// An undelivered run is told once: the diff that tells it, once delivered, marks it reported.
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: director("wrr", 1, 1), RunID: "r2"})
	for i, wantTold := range []bool{true, true, false} {
		d := mustHandle(t, next, protocol.Request{Op: protocol.OpDiff, Desired: want})
		if (d.LastRun != nil) != wantTold || (d.LastRun != nil && d.LastRun.RunID != "r2") {
			t.Errorf("diff %d: last run %+v, want told=%v", i, d.LastRun, wantTold)
		}
		if i == 1 {
			next.Delivered()
		}
	}

	// A reported run whose restore failed is told until a later run records another outcome.
	failed := wantRun
	failed.Outcome, failed.Error, failed.Reported = protocol.RestoreFailed, "ipvs: update: refused; restoring the snapshot also failed: refused", true
	if err := writeJSON(next.lastRunPath(), failed); err != nil {
		t.Fatal(err)
	}
	if d := mustHandle(t, next, protocol.Request{Op: protocol.OpDiff, Desired: want}); d.LastRun == nil || *d.LastRun != failed {
		t.Errorf("failed restore not told: %+v", d.LastRun)
	}
}

func TestSessionGuard(t *testing.T) {
	mgmt := netip.MustParseAddrPort("198.19.0.11:22")
	session := &Session{Client: netip.MustParseAddrPort("198.19.0.1:40000"), Server: mgmt, Device: "eth0"}
	pfx := func(s string) []netip.Prefix { return []netip.Prefix{netip.MustParsePrefix(s)} }
	withLinks := func(s protocol.State, links ...protocol.Link) protocol.State { s.Links = links; return s }
	cases := []struct {
		name      string
		want, cur protocol.State
		refuse    string // "" = allowed
	}{
		{"the normal director", director("rr", 1, 1), protocol.State{}, ""},
		{"removes the session's address", protocol.State{}, withLinks(protocol.State{}, protocol.Link{Name: "tunl0", Addresses: pfx("198.19.0.11/32")}),
			"the plan would remove 198.19.0.11/32 from tunl0, the address this session arrives on"},
		{"keeps the session's address", withLinks(protocol.State{}, protocol.Link{Name: "tunl0", Addresses: pfx("198.19.0.11/32")}),
			withLinks(protocol.State{}, protocol.Link{Name: "tunl0", Addresses: pfx("198.19.0.11/32")}), ""},
		{"VIP is the client's address", withLinks(protocol.State{}, protocol.Link{Name: "tunl0", Addresses: pfx("198.19.0.1/32")}), protocol.State{},
			"the plan would put 198.19.0.1/32 on tunl0, which holds this session's client address 198.19.0.1"},
		{"prefix holds the client", withLinks(protocol.State{}, protocol.Link{Name: "tunl0", Addresses: pfx("198.19.0.0/24")}), protocol.State{}, "which holds this session's client address"},
		{"takes the reply device down", withLinks(protocol.State{}, protocol.Link{Name: "eth0", Down: true, Addresses: []netip.Prefix{}}), protocol.State{},
			"the plan would take eth0 down, the device the replies to this session leave by"},
		{"IPVS on the SSH port", protocol.State{Services: []protocol.Service{{Protocol: "tcp", Address: mgmt.Addr(), Port: 22, Scheduler: "rr"}}}, protocol.State{},
			"the plan would make tcp/198.19.0.11:22 an IPVS service"},
		{"IPVS on another port of the address", protocol.State{Services: []protocol.Service{{Protocol: "tcp", Address: mgmt.Addr(), Port: 80, Scheduler: "rr"}}}, protocol.State{}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := session.check(c.want, c.cur)
			switch {
			case c.refuse == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.refuse != "" && (err == nil || !strings.Contains(err.Error(), c.refuse) || !strings.Contains(err.Error(), "refusing to cut this SSH session (198.19.0.1:40000 -> 198.19.0.11:22)")):
				t.Errorf("got %v, want refusal containing %q", err, c.refuse)
			}
		})
	}
	var none *Session
	if err := none.check(protocol.State{}, withLinks(protocol.State{}, protocol.Link{Name: "tunl0", Addresses: pfx("198.19.0.11/32")})); err != nil {
		t.Errorf("no session: %v", err)
	}
}

// TestSessionGuardStopsApplyAndDiff: the refusal comes before anything changes.
func TestSessionGuardStopsApplyAndDiff(t *testing.T) {
	f := newFake()
	e := newEngine(t, f)
	e.Session = ParseSession("198.18.48.180 40000 198.19.0.11 22")
	if e.Session == nil {
		t.Fatal("ParseSession failed")
	}
	for _, op := range []protocol.Op{protocol.OpDiff, protocol.OpApply} {
		resp := e.Handle(protocol.Request{Op: op, Desired: director("rr", 1, 1)})
		if !strings.Contains(resp.Error, "refusing to cut this SSH session") || len(f.modules) != 0 {
			t.Errorf("%s: %+v; kernel:\n%s", op, resp, f.dump())
		}
	}
	for _, bad := range []string{"", "198.19.0.1 40000 198.19.0.11", "x 1 198.19.0.11 22", "198.19.0.1 70000 198.19.0.11 22"} {
		if s := ParseSession(bad); s != nil {
			t.Errorf("ParseSession(%q) = %+v", bad, s)
		}
	}
}

// TestClaimKeepsTheHostForOneRun: the diff that opens a run claims the host for its SSH connection;
// while that connection is open, another run's diff and apply are turned away and the run's own
// apply goes ahead. Once it is closed, the claim is free.
func TestClaimKeepsTheHostForOneRun(t *testing.T) {
	f := newFake()
	a := newEngine(t, f)
	b := *a
	open := map[string]bool{}
	isOpen := func(s *Session) bool { return open[s.String()] }
	a.Session, a.Open = ParseSession("198.18.0.1 40001 198.18.0.11 22"), isOpen
	b.Session, b.Open = ParseSession("198.18.0.2 40002 198.18.0.11 22"), isOpen
	open[a.Session.String()], open[b.Session.String()] = true, true

	claim := protocol.Request{Op: protocol.OpDiff, Desired: director("rr", 1, 1), Claim: true, RunID: "run-a", Actor: "alice@ops1"}
	if resp := a.Handle(claim); resp.Error != "" {
		t.Fatalf("first claim: %s", resp.Error)
	}
	for _, req := range []protocol.Request{
		{Op: protocol.OpDiff, Desired: director("rr", 1, 1), Claim: true, RunID: "run-b", Actor: "bob@ops2"},
		{Op: protocol.OpApply, Desired: director("rr", 1, 1), RunID: "run-b", Actor: "bob@ops2"},
	} {
		resp := b.Handle(req)
		if want := "host is locked by another tunplan run (run run-a since "; !strings.Contains(resp.Error, want) ||
			!strings.Contains(resp.Error, "by alice@ops1, connected from 198.18.0.1:40001)") {
			t.Errorf("second run's %s: error %q, want the claim named", req.Op, resp.Error)
		}
	}
	if len(f.svcs) != 0 {
		t.Fatalf("the second run changed the host:\n%s", f.dump())
	}
	// A plain diff (tunplan diff) is not turned away.
	if resp := b.Handle(protocol.Request{Op: protocol.OpDiff, Desired: director("rr", 1, 1)}); resp.Error != "" {
		t.Errorf("plain diff: %s", resp.Error)
	}
	if resp := a.Handle(protocol.Request{Op: protocol.OpApply, Desired: director("rr", 1, 1), RunID: "run-a", Actor: "alice@ops1"}); resp.Outcome != protocol.Applied {
		t.Fatalf("the claiming run's apply: %+v", resp)
	}
	open[a.Session.String()] = false
	if resp := b.Handle(protocol.Request{Op: protocol.OpApply, Desired: director("rr", 2, 1), RunID: "run-b", Actor: "bob@ops2"}); resp.Outcome != protocol.Applied {
		t.Fatalf("apply after the first run's connection closed: %+v", resp)
	}
}
