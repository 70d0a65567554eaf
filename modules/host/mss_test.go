package host

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunplan/tunplan/modules/protocol"
)

// fakeRouteTable is a realserver's main routing table, for the mss module: RouteChange replaces the
// route of the same destination, TOS and metric and never adds one. Every route keeps its gateway
// and device whatever is done to its advmss; gone counts requests that would have changed them.
type fakeRouteTable struct {
	routes  []netlink.Route
	writes  int
	failOn  int // fail the failOn-th write (1-based); 0: none
	touched int // writes that changed anything but the advmss
}

// realserverRoutes is a realserver's table: its subnet, and the default route via the region's
// router (the SSH session may ride on it).
func realserverRoutes() *fakeRouteTable {
	_, subnet, _ := net.ParseCIDR("198.18.1.0/24")
	return &fakeRouteTable{routes: []netlink.Route{
		{Family: netlink.FAMILY_V4, Table: unix.RT_TABLE_MAIN, Type: unix.RTN_UNICAST, Dst: subnet, LinkIndex: 2, Scope: netlink.SCOPE_LINK, Protocol: unix.RTPROT_KERNEL},
		{Family: netlink.FAMILY_V4, Table: unix.RT_TABLE_MAIN, Type: unix.RTN_UNICAST, Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
			Gw: net.IPv4(198, 18, 1, 254).To4(), LinkIndex: 2, Protocol: unix.RTPROT_BOOT},
	}}
}

func (f *fakeRouteTable) RouteList(_ netlink.Link, family int) ([]netlink.Route, error) {
	var out []netlink.Route
	for _, r := range f.routes {
		if r.Family == family {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fakeRouteTable) RouteChange(r *netlink.Route) error {
	f.writes++
	if f.writes == f.failOn {
		return errors.New("fake: route change refused")
	}
	for i, o := range f.routes {
		if ones, _ := o.Dst.Mask.Size(); ones == 0 && o.Tos == r.Tos && o.Priority == r.Priority {
			if !o.Gw.Equal(r.Gw) || o.LinkIndex != r.LinkIndex || o.Protocol != r.Protocol || o.Type != r.Type {
				f.touched++
			}
			f.routes[i] = *r
			f.routes[i].Family = netlink.FAMILY_V4
			return nil
		}
	}
	return syscall.ENOENT
}

// advmss is the default route's advmss, or -1 without one.
func (f *fakeRouteTable) advmss() int {
	for _, r := range f.routes {
		if ones, _ := r.Dst.Mask.Size(); ones == 0 {
			return r.AdvMSS
		}
	}
	return -1
}

func (f *fakeRouteTable) dropDefault() { f.routes = f.routes[:1] }

// realserver is a realserver's state with tunnel_mss (0: without).
func realserver(mss uint32) protocol.State {
	st := protocol.State{
		Modules: []string{"ipip"},
		Sysctls: []protocol.Sysctl{{Key: "net.ipv4.conf.all.rp_filter", Value: "0"}},
		Links:   []protocol.Link{{Name: "tunl0", Addresses: []netip.Prefix{netip.PrefixFrom(vip, 32)}}},
	}
	if mss != 0 {
		st.Routes = []protocol.RouteMSS{{Dst: protocol.DefaultRoute, AdvMSS: mss}}
	}
	return st
}

func mssEngine(t *testing.T) (*fakeKernel, *fakeRouteTable, *Engine) {
	f, r := newFake(), realserverRoutes()
	e := newEngine(t, f)
	e.MSS = r
	return f, r, e
}

func mssChanges(resp protocol.Response) []string {
	var out []string
	for _, c := range resp.Changes {
		if c.Module == "mss" {
			out = append(out, string(rune(c.Action))+" "+c.Address+" "+c.Shown())
		}
	}
	return out
}

// TestTunnelMSSApplyDiffRollback: tunnel_mss is a change of the default route's advmss, diffed
// against the live route, recorded in the generations (0 before tunplan), rolled back, and taken
// off when it leaves the plan; the route's gateway and device are never changed.
func TestTunnelMSSApplyDiffRollback(t *testing.T) {
	_, r, e := mssEngine(t)
	want := realserver(1440)
	d := mustHandle(t, e, protocol.Request{Op: protocol.OpDiff, Desired: want})
	if got := mssChanges(d); strings.Join(got, ",") != "~ route default advmss 0 => 1440" {
		t.Fatalf("diff: %v", got)
	}
	if c := d.Changes[len(d.Changes)-1]; c.Module != "mss" {
		t.Errorf("the advmss is not the last change: %v", addresses(d.Changes))
	}
	resp := mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: want, RunID: "r1"})
	if resp.Outcome != protocol.Applied || r.advmss() != 1440 {
		t.Fatalf("apply: %+v, advmss %d", resp, r.advmss())
	}
	gens := mustHandle(t, e, protocol.Request{Op: protocol.OpHistory}).Generations
	if len(gens) != 2 || len(gens[0].State.Routes) != 1 || gens[0].State.Routes[0] != (protocol.RouteMSS{Dst: "default"}) ||
		len(gens[1].State.Routes) != 1 || gens[1].State.Routes[0].AdvMSS != 1440 {
		t.Fatalf("generations: %+v", gens)
	}
	writes := r.writes
	if again := mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: want, RunID: "r2"}); again.Outcome != protocol.Unchanged || r.writes != writes {
		t.Errorf("second apply: %+v, %d writes", again, r.writes-writes)
	}

	// Drift: the advmss changed by hand is seen and put back.
	r.routes[1].AdvMSS = 1400
	if got := mssChanges(mustHandle(t, e, protocol.Request{Op: protocol.OpDiff, Desired: want})); strings.Join(got, ",") != "~ route default advmss 1400 => 1440" {
		t.Errorf("drift: %v", got)
	}
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: want, RunID: "r3"})

	// Rollback to before tunplan: the route gets back the advmss of generation 0 (none).
	rb := mustHandle(t, e, protocol.Request{Op: protocol.OpRollback, To: new(int), RunID: "r4"})
	if r.advmss() != 0 || strings.Join(mssChanges(rb), ",") != "~ route default advmss 1440 => 0" {
		t.Errorf("rollback: %v, advmss %d", mssChanges(rb), r.advmss())
	}
	if r.touched != 0 {
		t.Errorf("%d writes changed the route itself", r.touched)
	}
}

// TestTunnelMSSLeavesThePlan: a tunnel_mss removed from the plan takes the advmss off (a removal,
// in the remove phase); the route is then released: an advmss set by hand afterwards is not
// tunplan's, and is neither reported nor changed.
func TestTunnelMSSLeavesThePlan(t *testing.T) {
	_, r, e := mssEngine(t)
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: realserver(1440), RunID: "r1"})
	add := mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: realserver(0), RunID: "r2", Phase: protocol.PhaseAdd})
	if len(add.Changes) != 0 || r.advmss() != 1440 {
		t.Errorf("add phase: %v", addresses(add.Changes))
	}
	rm := mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: realserver(0), RunID: "r2", Phase: protocol.PhaseRemove})
	if got := strings.Join(mssChanges(rm), ","); got != "- route default advmss 1440" || r.advmss() != 0 {
		t.Fatalf("remove phase: %s, advmss %d", got, r.advmss())
	}
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: realserver(0), RunID: "r3"})
	r.routes[1].AdvMSS = 1300 // by hand, after tunplan let go
	if d := mustHandle(t, e, protocol.Request{Op: protocol.OpDiff, Desired: realserver(0)}); len(d.Changes) != 0 {
		t.Errorf("a released route is drift: %v", addresses(d.Changes))
	}
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: realserver(0), RunID: "r4"})
	if r.advmss() != 1300 {
		t.Errorf("a released route was changed: advmss %d", r.advmss())
	}
}

// TestTunnelMSSRestoredWithTheSnapshot: a step that fails after the advmss was set puts the
// advmss back with the rest; a failing advmss puts back what came before it.
func TestTunnelMSSRestoredWithTheSnapshot(t *testing.T) {
	t.Run("a later removal fails", func(t *testing.T) {
		f, r, e := mssEngine(t)
		two := realserver(0)
		two.Links[0].Addresses = append(two.Links[0].Addresses, netip.MustParsePrefix("198.18.48.190/32"))
		mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: two})
		before := f.dump()
		f.failOn = "addr del 198.18.48.190/32"
		resp := e.Handle(protocol.Request{Op: protocol.OpApply, Desired: realserver(1440)})
		if resp.Outcome != protocol.Restored || !strings.Contains(resp.Error, "refused") {
			t.Fatalf("response %+v", resp)
		}
		if r.advmss() != 0 || f.dump() != before {
			t.Errorf("not restored: advmss %d\n%s\nwant\n%s", r.advmss(), f.dump(), before)
		}
	})
	t.Run("the advmss fails", func(t *testing.T) {
		f, r, e := mssEngine(t)
		before := strip(f.dump())
		r.failOn = 1
		resp := e.Handle(protocol.Request{Op: protocol.OpApply, Desired: realserver(1440)})
		if resp.Outcome != protocol.Restored || !strings.Contains(resp.Error, "mss: set advmss 1440 on the default route default via 198.18.1.254") {
			t.Fatalf("response %+v", resp)
		}
		if r.advmss() != 0 || strip(f.dump()) != before {
			t.Errorf("not restored: advmss %d\n%s", r.advmss(), f.dump())
		}
	})
}

// TestTunnelMSSWithoutADefaultRoute: no default route to set the advmss on is an apply that fails
// with a clear error and restores the host; no route is added.
func TestTunnelMSSWithoutADefaultRoute(t *testing.T) {
	f, r, e := mssEngine(t)
	r.dropDefault()
	before := strip(f.dump())
	d := mustHandle(t, e, protocol.Request{Op: protocol.OpDiff, Desired: realserver(1440)})
	if got := strings.Join(mssChanges(d), ","); got != "~ route default advmss none (no default route) => 1440" {
		t.Errorf("diff: %s", got)
	}
	resp := e.Handle(protocol.Request{Op: protocol.OpApply, Desired: realserver(1440)})
	if resp.Outcome != protocol.Restored || !strings.Contains(resp.Error, "mss: no IPv4 default route in the main table to set advmss 1440 on") {
		t.Errorf("response %+v", resp)
	}
	if len(r.routes) != 1 || r.writes != 0 || strip(f.dump()) != before {
		t.Errorf("routes %+v, %d writes\n%s", r.routes, r.writes, f.dump())
	}
}

// TestTunnelMSSDestroyAndBoot: destroy gives the route back its generation-0 advmss (one set by
// hand before tunplan), and the boot restore sets tunnel_mss again on a route that lost it.
func TestTunnelMSSDestroyAndBoot(t *testing.T) {
	f, r, _ := mssEngine(t)
	r.routes[1].AdvMSS = 1400 // before tunplan
	dir, root := filepath.Join(t.TempDir(), "state"), t.TempDir()
	e := bootEngine(t, f, dir, root, true)
	e.MSS = r
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: realserver(1440), RunID: "r1"})
	if r.advmss() != 1440 {
		t.Fatalf("advmss %d", r.advmss())
	}

	r.routes[1].AdvMSS = 0 // the route made anew at boot, without it
	var log bytes.Buffer
	if err := e.Restore(&log, false); err != nil || r.advmss() != 1440 || !strings.Contains(log.String(), "~ route default advmss  0 => 1440") {
		t.Errorf("restore: %v, advmss %d\n%s", err, r.advmss(), log.String())
	}

	preview := mustHandle(t, e, protocol.Request{Op: protocol.OpDestroy, DryRun: true})
	if got := strings.Join(mssChanges(preview), ","); got != "~ route default advmss 1440 => 1400" {
		t.Errorf("destroy preview: %s", got)
	}
	mustHandle(t, e, protocol.Request{Op: protocol.OpDestroy, RunID: "d1"})
	if r.advmss() != 1400 || r.touched != 0 {
		t.Errorf("after destroy: advmss %d, %d writes changed the route", r.advmss(), r.touched)
	}
}

// TestDestroyTargetRoutes: an advmss generation 0 did not read was tunplan's: it goes; one it
// read comes back; an owned advmss of 0 (released) asks for nothing.
func TestDestroyTargetRoutes(t *testing.T) {
	owned := protocol.State{Routes: []protocol.RouteMSS{{Dst: "default", AdvMSS: 1440}}}
	if got := destroyTarget(owned, protocol.State{}).Routes; len(got) != 1 || got[0] != (protocol.RouteMSS{Dst: "default"}) {
		t.Errorf("not in generation 0: %+v", got)
	}
	base := protocol.State{Routes: []protocol.RouteMSS{{Dst: "default", AdvMSS: 1400}}}
	if got := destroyTarget(owned, base).Routes; len(got) != 1 || got[0] != (protocol.RouteMSS{Dst: "default", AdvMSS: 1400}) {
		t.Errorf("in generation 0: %+v", got)
	}
	released := protocol.State{Routes: []protocol.RouteMSS{{Dst: "default"}}}
	if got := destroyTarget(released, base).Routes; len(got) != 0 {
		t.Errorf("released: %+v", got)
	}
}

// TestStatesWithoutRoutesReadNone: a host whose states set no advmss never reads its routes (an
// engine without the boundary works, as before tunnel_mss).
func TestStatesWithoutRoutesReadNone(t *testing.T) {
	f := newFake()
	e := newEngine(t, f) // no MSS boundary
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: realserver(0)})
	if r := e.Handle(protocol.Request{Op: protocol.OpDiff, Desired: realserver(1440)}); !strings.Contains(r.Error, "mss: this helper cannot read routes") {
		t.Errorf("diff without the boundary: %+v", r)
	}
}

// At boot the early restore runs before the network is configured: with no default route yet it
// restores the rest, leaves the advmss to the late unit (installed with the state), and succeeds;
// the late restore, after network-online.target, sets it or fails.
func TestTunnelMSSWaitsForTheNetworkAtBoot(t *testing.T) {
	f, r, _ := mssEngine(t)
	dir, root := filepath.Join(t.TempDir(), "state"), t.TempDir()
	e := bootEngine(t, f, dir, root, true)
	e.MSS = r
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: realserver(1440), RunID: "r1"})
	if unit := read(t, root, protocol.RestoreLateUnit); !strings.Contains(unit, "\nExecStart="+testHelper+" restore --late\n") || !strings.Contains(unit, "After=network-online.target") {
		t.Errorf("late unit:\n%s", unit)
	}
	if link, err := os.Readlink(filepath.Join(root, protocol.RestoreLateLink)); err != nil || link != protocol.RestoreLateUnit {
		t.Errorf("late unit's link: %q %v", link, err)
	}

	rebooted := newFake()
	gateway := r.routes[1]
	r.routes = r.routes[:1] // no default route yet
	e = bootEngine(t, rebooted, dir, root, true)
	e.MSS = r
	var log bytes.Buffer
	if err := e.Restore(&log, false); err != nil || !strings.Contains(log.String(), "left to tunplan-restore-late.service") || !rebooted.links["tunl0"].up {
		t.Errorf("early restore: %v\n%s", err, log.String())
	}
	if err := e.Restore(&log, true); err == nil {
		t.Error("late restore without a default route succeeded")
	}
	gateway.AdvMSS = 0
	r.routes = append(r.routes, gateway) // the network is up
	log.Reset()
	if err := e.Restore(&log, true); err != nil || r.advmss() != 1440 {
		t.Errorf("late restore: %v, advmss %d\n%s", err, r.advmss(), log.String())
	}
	// A state without tunnel_mss has no late unit.
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: realserver(0), RunID: "r2"})
	if _, err := os.Lstat(filepath.Join(root, protocol.RestoreLateUnit)); !os.IsNotExist(err) {
		t.Errorf("late unit without tunnel_mss: %v", err)
	}
}
