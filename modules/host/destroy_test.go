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
