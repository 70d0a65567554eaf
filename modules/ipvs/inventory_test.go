package ipvs

import (
	"net/netip"
	"reflect"
	"testing"

	cipvs "github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"

	"github.com/tunplan/tunplan/modules/protocol"
)

// TestInventory reads a mixed table through the client (on the netlink fake): the LVS-TUN services
// come back as tunplan's services, every other service as one line saying why it was left out.
func TestInventory(t *testing.T) {
	cl, _ := testClient(t)
	addr := netip.MustParseAddr
	tun := func(ip string, port uint16, w uint32) cipvs.Destination {
		return destToKernel(protocol.Destination{Address: addr(ip), Port: port, Weight: w, Forward: protocol.ForwardTunnel})
	}
	web := toKernel(protocol.Service{Protocol: "tcp", Address: addr("198.18.48.180"), Port: 80, Scheduler: "wrr"})
	dns := toKernel(protocol.Service{Protocol: "udp", Address: addr("198.18.48.181"), Port: 53, Scheduler: "sh", Persistence: 300})
	masq := toKernel(protocol.Service{Protocol: "tcp", Address: addr("198.18.48.182"), Port: 443, Scheduler: "rr"})
	gue := toKernel(protocol.Service{Protocol: "tcp", Address: addr("198.18.48.183"), Port: 80, Scheduler: "rr"})
	empty := toKernel(protocol.Service{Protocol: "tcp", Address: addr("198.18.48.184"), Port: 8080, Scheduler: "rr"})
	fwmark := cipvs.Service{FWMark: 3, Family: cipvs.INET, Scheduler: "rr", Netmask: netmask.MaskFrom(32, 32)}
	v6 := cipvs.Service{Address: addr("2001:db8::80"), Port: 80, Protocol: cipvs.TCP, Family: cipvs.INET6, Scheduler: "rr", Netmask: netmask.MaskFrom(128, 128)}
	sctp := cipvs.Service{Address: addr("198.18.48.185"), Port: 9, Protocol: cipvs.SCTP, Family: cipvs.INET, Scheduler: "rr", Netmask: netmask.MaskFrom(32, 32)}
	guest := tun("198.18.1.12", 80, 1)
	guest.TunnelType = cipvs.GUE
	masqDest := tun("198.18.1.13", 443, 1)
	masqDest.FwdMethod = cipvs.Masquerade
	writes := []Write{
		{Cmd: NewService, Service: web}, {Cmd: NewDest, Service: web, Dest: tun("198.18.10.11", 80, 3)}, {Cmd: NewDest, Service: web, Dest: tun("198.18.1.11", 80, 1)},
		{Cmd: NewService, Service: dns}, {Cmd: NewDest, Service: dns, Dest: tun("198.18.1.11", 53, 0)},
		{Cmd: NewService, Service: masq}, {Cmd: NewDest, Service: masq, Dest: tun("198.18.1.11", 443, 1)}, {Cmd: NewDest, Service: masq, Dest: masqDest},
		{Cmd: NewService, Service: gue}, {Cmd: NewDest, Service: gue, Dest: guest},
		{Cmd: NewService, Service: empty},
		{Cmd: NewService, Service: fwmark}, {Cmd: NewService, Service: v6}, {Cmd: NewService, Service: sctp},
	}
	for _, w := range writes {
		w.Name = "load"
		if err := cl.Queue(w); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.Flush(); err != nil {
		t.Fatal(err)
	}

	services, skipped, err := Inventory(cl)
	if err != nil {
		t.Fatal(err)
	}
	d := func(ip string, port uint16, w uint32) protocol.Destination {
		return protocol.Destination{Address: addr(ip), Port: port, Weight: w, Forward: protocol.ForwardTunnel}
	}
	want := []protocol.Service{
		{Protocol: "tcp", Address: addr("198.18.48.180"), Port: 80, Scheduler: "wrr", Destinations: []protocol.Destination{d("198.18.1.11", 80, 1), d("198.18.10.11", 80, 3)}},
		{Protocol: "tcp", Address: addr("198.18.48.184"), Port: 8080, Scheduler: "rr", Destinations: []protocol.Destination{}},
		{Protocol: "udp", Address: addr("198.18.48.181"), Port: 53, Scheduler: "sh", Persistence: 300, Destinations: []protocol.Destination{d("198.18.1.11", 53, 0)}},
	}
	if !reflect.DeepEqual(services, want) {
		t.Errorf("services\n%+v\nwant\n%+v", services, want)
	}
	wantSkipped := []string{
		"fwmark 3: a firewall-mark service; tunplan manages TCP and UDP services on an IPv4 VIP",
		"sctp/198.18.48.185:9: protocol sctp; tunplan manages TCP and UDP services",
		"tcp/198.18.48.182:443: destination 198.18.1.13:443 forwards by masq, not tunnel; tunplan manages LVS-TUN services only",
		"tcp/198.18.48.183:80: destination 198.18.1.12:80 tunnels by GUE; tunplan import writes IPIP services (write tunnel = \"gue\" and its block in the plan by hand)",
		"tcp/[2001:db8::80]:80: an IPv6 service; tunplan manages IPv4 services only",
	}
	if !reflect.DeepEqual(skipped, wantSkipped) {
		t.Errorf("skipped\n%q\nwant\n%q", skipped, wantSkipped)
	}

	// The services it keeps are what Facts reads of them: a plan made from them changes nothing.
	facts, err := Facts(cl, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range services {
		for _, f := range facts {
			if f.Key() == s.Key() && !reflect.DeepEqual(f, s) {
				t.Errorf("Facts reads %+v, Inventory %+v", f, s)
			}
		}
	}
	if steps := Diff(func() (Kernel, error) { return cl, nil }, services, factsOf(facts, services)); len(steps) != 0 {
		t.Errorf("diff of the inventory against the kernel: %v", steps)
	}
}

// factsOf keeps the services of facts that inv has (the engine reads only services in scope).
func factsOf(facts, inv []protocol.Service) []protocol.Service {
	var out []protocol.Service
	for _, f := range facts {
		for _, s := range inv {
			if f.Key() == s.Key() {
				out = append(out, f)
			}
		}
	}
	return out
}

func TestInventoryOfAnEmptyTable(t *testing.T) {
	cl, _ := testClient(t)
	services, skipped, err := Inventory(cl)
	if err != nil || services == nil || len(services) != 0 || skipped != nil {
		t.Errorf("%#v %#v %v", services, skipped, err)
	}
}
