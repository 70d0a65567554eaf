package host

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	cipvs "github.com/cloudflare/ipvs"

	"github.com/tunplan/tunplan/modules/ipvs"
	"github.com/tunplan/tunplan/modules/protocol"
)

// TestInspectDirector: inspect reports the LVS-TUN services as the engine reads them, the other
// services as skipped, tunl0's addresses and the host's other addresses (not the loopback's), and
// changes nothing.
func TestInspectDirector(t *testing.T) {
	f := newFake()
	e := newEngine(t, f)
	want := director("wrr", 3, 1)
	want.Services[0].Persistence = 600
	if resp := e.Handle(protocol.Request{Op: protocol.OpApply, Host: "lvs01", Desired: want}); resp.Error != "" {
		t.Fatal(resp.Error)
	}
	// Set up by hand besides tunplan: a masquerading service, the host's own addresses.
	masq := ipvs.ToKernel(protocol.Service{Protocol: "tcp", Address: netip.MustParseAddr("198.18.48.190"), Port: 443, Scheduler: "rr"})
	f.svcs[svcKey(masq)] = &fakeSvc{svc: masq, dests: map[string]cipvs.Destination{
		"198.18.1.183:443": {Address: rip1, Port: 443, Weight: 1, FwdMethod: cipvs.Masquerade},
	}}
	f.links["lo"] = &fakeLink{up: true, addrs: []string{"127.0.0.1/8"}}
	f.links["eth0"] = &fakeLink{up: true, addrs: []string{"198.19.0.11/24", "198.18.48.181/24"}}
	f.links["eth1"] = &fakeLink{addrs: []string{"10.0.0.1/8"}}
	f.links["tunl0"].addrs = append(f.links["tunl0"].addrs, "198.18.48.199/24")
	before, calls := f.dump(), f.calls
	gens, _ := os.ReadDir(filepath.Join(e.Dir, "generations"))

	resp := e.Handle(protocol.Request{Op: protocol.OpInspect, Host: "lvs01"})
	if resp.Error != "" {
		t.Fatal(resp.Error)
	}
	inv := resp.Inventory
	if inv == nil {
		t.Fatal("no inventory")
	}
	if !reflect.DeepEqual(inv.Services, want.Services) {
		t.Errorf("services %+v\nwant %+v", inv.Services, want.Services)
	}
	if s := []string{"tcp/198.18.48.190:443: destination 198.18.1.183:443 forwards by masq, not tunnel; tunplan manages LVS-TUN services only"}; !reflect.DeepEqual(inv.Skipped, s) {
		t.Errorf("skipped %q, want %q", inv.Skipped, s)
	}
	if p := []netip.Prefix{netip.MustParsePrefix("198.18.48.180/32"), netip.MustParsePrefix("198.18.48.199/24")}; !reflect.DeepEqual(inv.TunnelAddresses, p) {
		t.Errorf("tunnel addresses %v, want %v", inv.TunnelAddresses, p)
	}
	// Device order (the fake lists them by name), then the device's own order; no loopback.
	if a := []netip.Addr{netip.MustParseAddr("198.19.0.11"), netip.MustParseAddr("198.18.48.181"), netip.MustParseAddr("10.0.0.1")}; !reflect.DeepEqual(inv.Addresses, a) {
		t.Errorf("addresses %v, want %v", inv.Addresses, a)
	}
	if f.dump() != before || f.calls != calls {
		t.Errorf("inspect changed the host (%d writes):\n%s\nwas\n%s", f.calls-calls, f.dump(), before)
	}
	if after, _ := os.ReadDir(filepath.Join(e.Dir, "generations")); len(after) != len(gens) {
		t.Errorf("inspect recorded a generation: %d, was %d", len(after), len(gens))
	}

	// The services inventoried are, as a desired state, what the host has: a diff finds nothing.
	desired := want
	desired.Services = inv.Services
	resp = e.Handle(protocol.Request{Op: protocol.OpDiff, Host: "lvs01", Desired: desired})
	if resp.Error != "" || len(resp.Changes) != 0 {
		t.Errorf("diff of the inventory: %v %v", addresses(resp.Changes), resp.Error)
	}
}

// TestInspectRealserver: a host without ip_vs has no IPVS table to read (IPVS is never opened), and
// one without tunl0 no tunnel addresses.
func TestInspectRealserver(t *testing.T) {
	f := newFake()
	e := newEngine(t, f)
	opened := false
	e.IPVS = func() (ipvs.Kernel, error) { opened = true; return f, nil }
	f.links["eth0"] = &fakeLink{up: true, addrs: []string{"198.18.1.183/24"}}
	resp := e.Handle(protocol.Request{Op: protocol.OpInspect, Host: "rs1"})
	if resp.Error != "" || resp.Inventory == nil {
		t.Fatalf("%+v", resp)
	}
	inv := *resp.Inventory
	if opened || inv.Services == nil || len(inv.Services) != 0 || inv.Skipped != nil || inv.TunnelAddresses != nil {
		t.Errorf("opened IPVS %v, inventory %+v", opened, inv)
	}
	if len(inv.Addresses) != 1 || inv.Addresses[0] != rip1 {
		t.Errorf("addresses %v", inv.Addresses)
	}

	f.Load("ipip")
	f.links["tunl0"].addrs = []string{"198.18.48.180/32"}
	resp = e.Handle(protocol.Request{Op: protocol.OpInspect, Host: "rs1"})
	if resp.Error != "" || !reflect.DeepEqual(resp.Inventory.TunnelAddresses, []netip.Prefix{netip.PrefixFrom(vip, 32)}) {
		t.Errorf("%+v", resp)
	}
}
