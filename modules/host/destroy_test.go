package host

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tunplan/tunplan/modules/protocol"
)

// A host with a foreign IPVS service and a foreign address on tunl0 (tunl0 down before tunplan),
// where tunplan applied the director's state.
func destroyable(t *testing.T) (*fakeKernel, *Engine, string) {
	f := newFake()
	root := t.TempDir()
	e := bootEngine(t, f, filepath.Join(t.TempDir(), "state"), root, true)
	f.modules["ip_vs"] = true
	foreign := protocol.Service{Protocol: "udp", Address: netip.MustParseAddr("198.18.48.50"), Port: 53, Scheduler: "wlc"}
	throwaway := newEngine(t, f)
	mustHandle(t, throwaway, protocol.Request{Op: protocol.OpApply, Desired: protocol.State{Services: []protocol.Service{foreign}}})
	f.links["tunl0"] = &fakeLink{up: false, addrs: []string{"198.18.48.77/32"}}
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: director("rr", 1, 1), RunID: "r1"})
	return f, e, root
}

func TestDestroyRemovesWhatTunplanOwnsAndNothingElse(t *testing.T) {
	f, e, root := destroyable(t)
	before := f.dump()
	preview := mustHandle(t, e, protocol.Request{Op: protocol.OpDestroy, DryRun: true})
	want := "- file /etc/modules-load.d/tunplan.conf,- file " + protocol.SysctlFile + ",- file " + protocol.RestoreLink + ",- file " + protocol.RestoreUnit +
		",- ipvs tcp/198.18.48.180:80,- tunnel tunl0 198.18.48.180/32,~ sysctl net.ipv4.ip_forward,~ tunnel tunl0"
	if got := strings.Join(slices.Sorted(slices.Values(addresses(preview.Changes))), ","); got != want {
		t.Errorf("preview:\n%s\nwant:\n%s", got, want)
	}
	if f.dump() != before {
		t.Fatal("a dry run changed the kernel")
	}
	resp := mustHandle(t, e, protocol.Request{Op: protocol.OpDestroy, RunID: "d1"})
	if resp.Outcome != protocol.Applied || len(resp.Changes) != len(preview.Changes) {
		t.Errorf("destroy: %+v", resp)
	}
	if f.svcs["6/198.18.48.180:80"] != nil || f.svcs["17/198.18.48.50:53"] == nil {
		t.Errorf("services:\n%s", f.dump())
	}
	if l := f.links["tunl0"]; l.up || fmt.Sprint(l.addrs) != "[198.18.48.77/32]" {
		t.Errorf("tunl0 up %v addresses %v, want down with the foreign address only", l.up, l.addrs)
	}
	if f.sysctls["net.ipv4.ip_forward"] != "0" {
		t.Errorf("ip_forward %s, want its generation-0 value 0", f.sysctls["net.ipv4.ip_forward"])
	}
	for _, p := range []string{filepath.Join(root, protocol.RestoreUnit), filepath.Join(root, protocol.RestoreLink), filepath.Join(root, protocol.ModulesLoad), filepath.Join(root, protocol.SysctlFile), e.Dir} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s still there (%v)", p, err)
		}
	}
}

func TestDestroyKeepingHistory(t *testing.T) {
	f, e, _ := destroyable(t)
	mustHandle(t, e, protocol.Request{Op: protocol.OpDestroy, RunID: "d1", KeepHistory: true})
	gens := mustHandle(t, e, protocol.Request{Op: protocol.OpHistory}).Generations
	if n := len(gens); n != 3 || gens[2].Kind != protocol.KindDestroy || gens[2].RunID != "d1" {
		t.Fatalf("generations %+v", gens)
	}
	// The destroy can be rolled back like any run: generation 1 comes back.
	mustHandle(t, e, protocol.Request{Op: protocol.OpRollback, To: new(int), RunID: "r0"})
	one := 1
	mustHandle(t, e, protocol.Request{Op: protocol.OpRollback, To: &one, RunID: "r1b"})
	if f.svcs["6/198.18.48.180:80"] == nil || !f.links["tunl0"].up {
		t.Errorf("after rollback to generation 1:\n%s", f.dump())
	}
}

// A VIP put on the host's own device (vip_device = "eth0") by a later apply, so generation 0 never
// read it: destroy removes the VIP and leaves the device up (it used to take any device that
// generation 0 did not know down), while tunl0, which tunplan brought up, goes down.
func TestDestroyNeverTakesTheHostsOwnDeviceDown(t *testing.T) {
	f, e, _ := destroyable(t)
	f.links["eth0"] = &fakeLink{up: true, addrs: []string{"198.19.0.11/24"}}
	onEth0 := director("rr", 1, 1)
	onEth0.Links = append(onEth0.Links, protocol.Link{Name: "eth0", Addresses: []netip.Prefix{netip.MustParsePrefix("198.18.48.181/32")}})
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: onEth0, RunID: "r2"})
	preview := mustHandle(t, e, protocol.Request{Op: protocol.OpDestroy, DryRun: true})
	if got := strings.Join(addresses(preview.Changes), ","); strings.Contains(got, "~ tunnel eth0") || !strings.Contains(got, "- tunnel eth0 198.18.48.181/32") {
		t.Errorf("preview: %s", got)
	}
	mustHandle(t, e, protocol.Request{Op: protocol.OpDestroy, RunID: "d1"})
	if l := f.links["eth0"]; !l.up || fmt.Sprint(l.addrs) != "[198.19.0.11/24]" {
		t.Errorf("eth0 up %v addresses %v, want up with its own address only", l.up, l.addrs)
	}
	if f.links["tunl0"].up {
		t.Error("tunl0 still up")
	}
}

// destroy runs the session guard as apply does: it will not remove the address the SSH session
// arrives on (here a VIP the operator also logs in by), and changes nothing.
func TestDestroyKeepsTheSession(t *testing.T) {
	f, e, _ := destroyable(t)
	e.Session = ParseSession("198.19.0.1 40000 198.18.48.180 22")
	before := f.dump()
	for _, dry := range []bool{true, false} {
		resp := e.Handle(protocol.Request{Op: protocol.OpDestroy, DryRun: dry, RunID: "d1"})
		if !strings.Contains(resp.Error, "refusing to cut this SSH session") || !strings.Contains(resp.Error, "198.18.48.180/32 from tunl0") {
			t.Errorf("dry run %v: %+v", dry, resp)
		}
	}
	if f.dump() != before {
		t.Errorf("a refused destroy changed the kernel:\n%s", f.dump())
	}
	if _, err := os.Stat(e.Dir); err != nil {
		t.Errorf("a refused destroy removed the state: %v", err)
	}
}
