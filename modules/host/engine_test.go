package host

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/ipvs"
	"github.com/tunplan/tunplan/modules/protocol"
)

var (
	vip  = netip.MustParseAddr("198.18.48.180")
	rip1 = netip.MustParseAddr("198.18.1.183")
	rip2 = netip.MustParseAddr("198.18.10.182")
)

func newEngine(t testing.TB, f *fakeKernel) *Engine {
	dir := t.TempDir()
	return &Engine{
		Dir:  filepath.Join(dir, "state"),
		Kmod: f, Sysctl: fakeSysctl{f}, Tunnel: f, Fou: f,
		IPVS: func() (ipvs.Kernel, error) {
			if !f.modules["ip_vs"] {
				return nil, errors.New("genetlink family IPVS not found")
			}
			return f, nil
		},
		Now: func() time.Time { return time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC) },
	}
}

func director(sched string, w1, w2 uint32) protocol.State {
	return protocol.State{
		Modules: []string{"ip_vs", "ip_vs_" + sched, "ipip"},
		Sysctls: []protocol.Sysctl{{Key: "net.ipv4.ip_forward", Value: "1"}},
		Links:   []protocol.Link{{Name: "tunl0", Addresses: []netip.Prefix{netip.PrefixFrom(vip, 32)}}},
		Services: []protocol.Service{{Protocol: "tcp", Address: vip, Port: 80, Scheduler: sched, Destinations: []protocol.Destination{
			{Address: rip1, Port: 80, Weight: w1, Forward: "tunnel"},
			{Address: rip2, Port: 80, Weight: w2, Forward: "tunnel"},
		}}},
	}
}

// dump renders the fake kernel's state, sorted, for whole-state comparisons.
func (f *fakeKernel) dump() string {
	var lines []string
	for m := range f.modules {
		lines = append(lines, "module "+m)
	}
	for k, v := range f.sysctls {
		lines = append(lines, "sysctl "+k+"="+v)
	}
	for n, l := range f.links {
		lines = append(lines, fmt.Sprintf("link %s up=%v %v", n, l.up, l.addrs))
	}
	for k, s := range f.svcs {
		lines = append(lines, fmt.Sprintf("svc %s %s flags=%d timeout=%d", k, s.svc.Scheduler, s.svc.Flags, s.svc.Timeout))
		for dk, d := range s.dests {
			lines = append(lines, fmt.Sprintf("dest %s %s w=%d fwd=%d tun=%d:%d:%d", k, dk, d.Weight, d.FwdMethod, d.TunnelType, d.TunnelPort, d.TunnelFlags))
		}
	}
	for p, x := range f.fou {
		lines = append(lines, fmt.Sprintf("fou %d type=%d", p, x.EncapType))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func addresses(cs []change.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, string(rune(c.Action))+" "+c.Address)
	}
	return out
}

func mustHandle(t *testing.T, e *Engine, req protocol.Request) protocol.Response {
	t.Helper()
	resp := e.Handle(req)
	if resp.Error != "" {
		t.Fatalf("%s: %s", req.Op, resp.Error)
	}
	return resp
}

func TestApplyFromEmptyThenNothingToDo(t *testing.T) {
	f := newFake()
	e := newEngine(t, f)
	want := director("rr", 1, 1)
	diff := mustHandle(t, e, protocol.Request{Op: protocol.OpDiff, Desired: want})
	wantChanges := []string{
		"+ kmod ip_vs", "+ kmod ip_vs_rr", "+ kmod ipip",
		"~ tunnel tunl0", "+ tunnel tunl0 198.18.48.180/32",
		"~ sysctl net.ipv4.ip_forward",
		"+ ipvs tcp/198.18.48.180:80",
		"+ ipvs tcp/198.18.48.180:80 -> 198.18.1.183:80",
		"+ ipvs tcp/198.18.48.180:80 -> 198.18.10.182:80",
	}
	if got := addresses(diff.Changes); strings.Join(got, "\n") != strings.Join(wantChanges, "\n") {
		t.Fatalf("diff:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantChanges, "\n"))
	}
	if _, err := os.Stat(e.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("diff wrote state: %v", err)
	}
	resp := mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: want, RunID: "r1"})
	if resp.Outcome != protocol.Applied || resp.Generation != 1 || len(resp.Changes) != len(wantChanges) {
		t.Fatalf("apply: %+v", resp)
	}
	s := f.svcs["6/198.18.48.180:80"]
	if s == nil || s.svc.Scheduler != "rr" || len(s.dests) != 2 || s.dests["198.18.1.183:80"].FwdMethod != 2 || !f.links["tunl0"].up || f.sysctls["net.ipv4.ip_forward"] != "1" {
		t.Fatalf("kernel after apply:\n%s", f.dump())
	}
	calls := f.calls
	if d := mustHandle(t, e, protocol.Request{Op: protocol.OpDiff, Desired: want}); len(d.Changes) != 0 {
		t.Errorf("diff after apply: %v", addresses(d.Changes))
	}
	again := mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: want, RunID: "r2"})
	if again.Outcome != protocol.Unchanged || len(again.Changes) != 0 || f.calls != calls {
		t.Errorf("second apply: %+v, %d writes", again, f.calls-calls)
	}
	if gens := mustHandle(t, e, protocol.Request{Op: protocol.OpHistory}).Generations; len(gens) != 2 || gens[0].Kind != "baseline" || gens[1].Kind != "apply" {
		t.Errorf("generations: %+v", gens)
	}
}

func TestDriftIsSeenAndFixed(t *testing.T) {
	svc := "6/198.18.48.180:80"
	cases := []struct {
		name   string
		drift  func(f *fakeKernel)
		change string // the one change diff must report, with before => after
	}{
		{"weight changed", func(f *fakeKernel) {
			d := f.svcs[svc].dests["198.18.10.182:80"]
			d.Weight = 7
			f.svcs[svc].dests["198.18.10.182:80"] = d
		}, "~ ipvs tcp/198.18.48.180:80 -> 198.18.10.182:80 weight=7 fwd=tunnel => weight=1 fwd=tunnel"},
		{"destination deleted", func(f *fakeKernel) { delete(f.svcs[svc].dests, "198.18.1.183:80") },
			"+ ipvs tcp/198.18.48.180:80 -> 198.18.1.183:80  => weight=1 fwd=tunnel"},
		{"extra destination", func(f *fakeKernel) {
			f.svcs[svc].dests["198.18.10.99:80"] = f.svcs[svc].dests["198.18.1.183:80"]
			d := f.svcs[svc].dests["198.18.10.99:80"]
			d.Address = netip.MustParseAddr("198.18.10.99")
			f.svcs[svc].dests["198.18.10.99:80"] = d
		}, "- ipvs tcp/198.18.48.180:80 -> 198.18.10.99:80 weight=1 fwd=tunnel => "},
		{"scheduler changed", func(f *fakeKernel) { f.svcs[svc].svc.Scheduler = "wlc" },
			"~ ipvs tcp/198.18.48.180:80 scheduler=wlc persistence=0 => scheduler=rr persistence=0"},
		{"service deleted", func(f *fakeKernel) { delete(f.svcs, svc) }, ""},
		{"ip_forward back to 0", func(f *fakeKernel) { f.sysctls["net.ipv4.ip_forward"] = "0" },
			"~ sysctl net.ipv4.ip_forward 0 => 1"},
		{"VIP removed", func(f *fakeKernel) { f.links["tunl0"].addrs = nil },
			"+ tunnel tunl0 198.18.48.180/32  => present"},
		{"tunl0 down", func(f *fakeKernel) { f.links["tunl0"].up = false }, "~ tunnel tunl0 down => up"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFake()
			e := newEngine(t, f)
			want := director("rr", 1, 1)
			mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: want})
			good := f.dump()
			c.drift(f)
			d := mustHandle(t, e, protocol.Request{Op: protocol.OpDiff, Desired: want})
			if c.change != "" {
				if len(d.Changes) != 1 {
					t.Fatalf("want 1 change, got %v", addresses(d.Changes))
				}
				ch := d.Changes[0]
				if got := fmt.Sprintf("%c %s %s => %s", ch.Action, ch.Address, ch.Before, ch.After); got != c.change {
					t.Errorf("change %q, want %q", got, c.change)
				}
			} else if len(d.Changes) == 0 {
				t.Fatal("drift not seen")
			}
			mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: want})
			if f.dump() != good {
				t.Errorf("apply did not fix the drift:\n%s\nwant:\n%s", f.dump(), good)
			}
		})
	}
}

func TestForeignStateIsNeverTouched(t *testing.T) {
	f := newFake()
	e := newEngine(t, f)
	f.modules["ip_vs"] = true
	foreign := protocol.Service{Protocol: "udp", Address: netip.MustParseAddr("198.18.48.50"), Port: 53, Scheduler: "wlc"}
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: protocol.State{Services: []protocol.Service{foreign}}}) // someone else's, made through a throwaway engine
	os.RemoveAll(e.Dir)
	f.links["tunl0"] = &fakeLink{up: true, addrs: []string{"198.18.48.77/32"}}
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: director("rr", 1, 1)})
	if f.svcs["17/198.18.48.50:53"] == nil {
		t.Error("foreign service removed")
	}
	if !strings.Contains(fmt.Sprint(f.links["tunl0"].addrs), "198.18.48.77/32") {
		t.Error("foreign address removed")
	}
	// Dropping the service from the plan removes tunplan's service and VIP, not the foreign ones.
	resp := mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: protocol.State{}})
	if got := strings.Join(addresses(resp.Changes), ","); got != "- ipvs tcp/198.18.48.180:80,- tunnel tunl0 198.18.48.180/32" {
		t.Errorf("changes %s", got)
	}
	if f.svcs["6/198.18.48.180:80"] != nil || f.svcs["17/198.18.48.50:53"] == nil || fmt.Sprint(f.links["tunl0"].addrs) != "[198.18.48.77/32]" {
		t.Errorf("kernel:\n%s", f.dump())
	}
}

func TestFailedStepRestoresSnapshot(t *testing.T) {
	changed := director("wrr", 5, 1)
	changed.Sysctls[0].Value = "0"
	cases := []struct {
		name    string
		applied bool // the host has director("rr",1,1) before the failing apply of changed
		failOn  string
	}{
		{"fresh: up tunl0", false, "up tunl0"},
		{"fresh: VIP", false, "addr add 198.18.48.180/32"},
		{"fresh: sysctl", false, "sysctl net.ipv4.ip_forward"},
		{"fresh: service", false, "create service"},
		{"fresh: second destination", false, "create destination 198.18.10.182:80"},
		{"update: scheduler", true, "update service"},
		{"update: weight", true, "update destination 198.18.1.183:80"},
		{"update: sysctl", true, "sysctl net.ipv4.ip_forward"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFake()
			e := newEngine(t, f)
			want := director("rr", 1, 1)
			if c.applied {
				mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: want})
				want = changed
			}
			before := strip(f.dump())
			f.failOn = c.failOn
			resp := e.Handle(protocol.Request{Op: protocol.OpApply, Desired: want})
			if resp.Outcome != protocol.Restored || !strings.Contains(resp.Error, c.failOn+" refused") {
				t.Errorf("response %+v", resp)
			}
			if got := strip(f.dump()); got != before {
				t.Errorf("not restored:\n%s\nwant:\n%s", got, before)
			}
		})
	}
}

// strip drops what a restore leaves by design: loaded modules (never unloaded), the tunl0 and gre0
// their loading created (down, no address) and their sysctls.
func strip(dump string) string {
	var keep []string
	for _, l := range strings.Split(dump, "\n") {
		if !strings.HasPrefix(l, "module ") && l != "link tunl0 up=false []" && !strings.HasPrefix(l, "sysctl net.ipv4.conf.tunl0") &&
			l != "link gre0 up=false []" && !strings.HasPrefix(l, "sysctl net.ipv4.conf.gre0") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func TestRollbackRestoresPreviousGeneration(t *testing.T) {
	f := newFake()
	e := newEngine(t, f)
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: director("rr", 1, 1)})
	afterA := f.dump()
	changed := director("wrr", 3, 1)
	changed.Services[0].Destinations = changed.Services[0].Destinations[:1]
	changed.Links[0].Addresses = append(changed.Links[0].Addresses, netip.MustParsePrefix("198.18.48.190/32"))
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: changed})
	if f.dump() == afterA {
		t.Fatal("second apply changed nothing")
	}
	rb := mustHandle(t, e, protocol.Request{Op: protocol.OpRollback})
	if strip(f.dump()) != strip(afterA) || rb.Outcome != protocol.Applied || rb.Generation != 3 {
		t.Errorf("rollback: %+v\n%s\nwant:\n%s", rb, f.dump(), afterA)
	}
	zero := 0
	mustHandle(t, e, protocol.Request{Op: protocol.OpRollback, To: &zero})
	// tunl0 did not exist before the first apply: it stays (up, without the VIP), as ipip stays loaded.
	if len(f.svcs) != 0 || fmt.Sprint(f.links["tunl0"].addrs) != "[]" || f.sysctls["net.ipv4.ip_forward"] != "0" {
		t.Errorf("rollback to the baseline:\n%s", f.dump())
	}
	nine := 9
	if r := e.Handle(protocol.Request{Op: protocol.OpRollback, To: &nine}); !strings.Contains(r.Error, "no generation 9") {
		t.Errorf("rollback to a missing generation: %+v", r)
	}
}

func TestPhasesOfOneRunMakeOneGeneration(t *testing.T) {
	f := newFake()
	e := newEngine(t, f)
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: director("rr", 1, 1)})
	smaller := director("rr", 1, 2)
	smaller.Services[0].Destinations = smaller.Services[0].Destinations[1:]
	add := mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: smaller, RunID: "run", Phase: protocol.PhaseAdd})
	if got := strings.Join(addresses(add.Changes), ","); got != "~ ipvs tcp/198.18.48.180:80 -> 198.18.10.182:80" {
		t.Errorf("add phase: %s", got)
	}
	rm := mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: smaller, RunID: "run", Phase: protocol.PhaseRemove})
	if got := strings.Join(addresses(rm.Changes), ","); got != "- ipvs tcp/198.18.48.180:80 -> 198.18.1.183:80" || rm.Generation != add.Generation {
		t.Errorf("remove phase: %s, generation %d vs %d", got, rm.Generation, add.Generation)
	}
}

func TestHostLockFailsFast(t *testing.T) {
	f := newFake()
	e := newEngine(t, f)
	if err := mkdirPrivate(e.Dir); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(e.Dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	lock.WriteString("pid 4242 since 2026-11-25T00:00:00Z by alice@ops1\n")
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	resp := e.Handle(protocol.Request{Op: protocol.OpApply, Desired: director("rr", 1, 1)})
	if !strings.Contains(resp.Error, "locked by another tunplan run (pid 4242 since 2026-11-25T00:00:00Z by alice@ops1)") || len(f.svcs) != 0 {
		t.Errorf("response %+v", resp)
	}
	syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if resp := e.Handle(protocol.Request{Op: protocol.OpApply, Desired: director("rr", 1, 1)}); resp.Error != "" {
		t.Errorf("after unlock: %s", resp.Error)
	}
}
