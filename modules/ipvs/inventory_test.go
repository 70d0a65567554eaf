package ipvs

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	cipvs "github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"

	"github.com/tunplan/tunplan/modules/protocol"
)

// TestInventory reads a mixed table through the client (on the netlink fake): the IPv4 LVS-TUN
// services come back as tunplan's services, every other service as one line saying why it was left
// out; IPv6 and firewall-mark services are not imported yet, but Facts reads them.
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
	fwmark := toKernel(protocol.Service{FWMark: 3, Address: netip.IPv4Unspecified(), Scheduler: "rr"})
	fwmark6 := toKernel(protocol.Service{FWMark: 3, Address: netip.IPv6Unspecified(), Scheduler: "rr"})
	v6 := toKernel(protocol.Service{Protocol: "tcp", Address: addr("2001:db8::80"), Port: 80, Scheduler: "rr"})
	mixed := toKernel(protocol.Service{Protocol: "udp", Address: addr("198.18.48.186"), Port: 53, Scheduler: "rr"})
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
		{Cmd: NewService, Service: fwmark}, {Cmd: NewDest, Service: fwmark, Dest: tun("198.18.1.11", 0, 1)},
		{Cmd: NewService, Service: fwmark6}, {Cmd: NewDest, Service: fwmark6, Dest: tun("2001:db8:1::11", 0, 1)},
		{Cmd: NewService, Service: v6}, {Cmd: NewDest, Service: v6, Dest: tun("2001:db8:1::11", 80, 2)},
		{Cmd: NewService, Service: mixed}, {Cmd: NewDest, Service: mixed, Dest: tun("2001:db8:1::11", 53, 1)},
		{Cmd: NewService, Service: sctp},
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
		"fwmark/3: not imported yet: tunplan import takes TCP and UDP services on IPv4 VIPs",
		"fwmark6/3: not imported yet: tunplan import takes TCP and UDP services on IPv4 VIPs",
		"sctp/198.18.48.185:9: protocol sctp; tunplan manages TCP and UDP services",
		"tcp/198.18.48.182:443: destination 198.18.1.13:443 forwards by masq, not tunnel; tunplan manages LVS-TUN services only",
		"tcp/198.18.48.183:80: destination 198.18.1.12:80 tunnels by GUE; tunplan import writes IPIP services (write tunnel = \"gue\" and its block in the plan by hand)",
		"tcp/[2001:db8::80]:80: not imported yet: tunplan import takes TCP and UDP services on IPv4 VIPs",
		"udp/198.18.48.186:53: destination [2001:db8:1::11]:53 is not of the VIP's address family; tunplan does not mix IPv4 and IPv6",
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
	// The services import leaves out for now are still read by Facts, as apply and diff need.
	var keys []string
	for _, f := range facts {
		keys = append(keys, f.Key().String())
	}
	if w := "fwmark/3 fwmark6/3 tcp/198.18.48.180:80 tcp/198.18.48.182:443 tcp/198.18.48.183:80 tcp/198.18.48.184:8080 tcp/[2001:db8::80]:80 udp/198.18.48.181:53 udp/198.18.48.186:53"; strings.Join(keys, " ") != w {
		t.Errorf("Facts reads\n%s\nwant\n%s", strings.Join(keys, " "), w)
	}
}

// notManaged names what fromKernel refuses: a protocol tunplan does not write, an unknown family.
func TestNotManaged(t *testing.T) {
	for _, tc := range []struct {
		s    cipvs.Service
		want string
	}{
		{cipvs.Service{Protocol: cipvs.SCTP, Family: cipvs.INET6, Address: netip.MustParseAddr("2001:db8::1"), Port: 9}, "sctp/[2001:db8::1]:9: protocol sctp; tunplan manages TCP and UDP services"},
		{cipvs.Service{FWMark: 5, Family: 7}, "fwmark 5: address family 7; tunplan manages IPv4 and IPv6 services"},
		{cipvs.Service{Protocol: cipvs.TCP, Family: cipvs.INET6, Address: netip.MustParseAddr("198.18.0.1"), Port: 80}, "tcp/198.18.0.1:80: address family 10; tunplan manages IPv4 and IPv6 services"},
	} {
		if _, ok := fromKernel(tc.s); ok {
			t.Errorf("fromKernel took %+v", tc.s)
		}
		if got := notManaged(tc.s); got != tc.want {
			t.Errorf("%q, want %q", got, tc.want)
		}
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
