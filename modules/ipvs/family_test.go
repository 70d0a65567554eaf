package ipvs

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	cipvs "github.com/cloudflare/ipvs"

	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/protocol"
)

// IPv6 and firewall-mark services go through Diff, the batching client and Facts as IPv4 ones do:
// created with their destinations (IPv6 ones, GUE and GRE tunnels, port 0 on a firewall-mark
// service), read back equal (no steps), read by their keys in a scope, updated (scheduler,
// persistence, weight, tunnel) and removed. An IPv4 and an IPv6 firewall-mark service of one mark
// are two services.
func TestIPv6AndFWMarkServices(t *testing.T) {
	cl, k := testClient(t)
	open := func() (Kernel, error) { return cl, nil }
	a := netip.MustParseAddr
	tun := func(ip string, port uint16, w uint32, tn protocol.Tunnel) protocol.Destination {
		return protocol.Destination{Address: a(ip), Port: port, Weight: w, Forward: protocol.ForwardTunnel, Tunnel: tn}
	}
	want := []protocol.Service{
		{FWMark: 1, Address: netip.IPv4Unspecified(), Scheduler: "rr", Persistence: 300, Destinations: []protocol.Destination{
			tun("198.18.1.183", 0, 1, protocol.Tunnel{}), tun("198.18.1.184", 0, 2, greTunnel)}},
		{FWMark: 1, Address: netip.IPv6Unspecified(), Scheduler: "wrr", Destinations: []protocol.Destination{
			tun("2001:2:0:1::183", 0, 1, protocol.Tunnel{})}},
		{Protocol: "tcp", Address: vip6, Port: 80, Scheduler: "sh", Destinations: []protocol.Destination{
			tun("2001:2:0:1::183", 80, 1, gueTunnel), tun("2001:2:0:1::184", 80, 0, protocol.Tunnel{})}},
		{Protocol: "udp", Address: vip6, Port: 53, Scheduler: "rr", Persistence: 60, Destinations: []protocol.Destination{
			tun("2001:2:0:1::183", 53, 1, protocol.Tunnel{})}},
	}
	run(t, cl, Diff(open, want, nil))
	if ks := k.info["fwmark6/1"]; ks.Family != cipvs.INET6 || ks.FWMark != 1 || ks.Netmask.Bits() != 128 || ks.Address.IsValid() || ks.Protocol != 0 {
		t.Errorf("the kernel holds fwmark6/1 as %+v", ks)
	}
	if ks := k.info["fwmark/1"]; ks.Family != cipvs.INET || ks.FWMark != 1 || ks.Netmask.Bits() != 32 {
		t.Errorf("the kernel holds fwmark/1 as %+v", ks)
	}
	got, err := Facts(cl, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read back\n %+v\nwant\n %+v", got, want)
	}
	if steps := Diff(open, want, got); len(steps) != 0 {
		t.Errorf("steps on a table that matches: %v", change.Changes(steps))
	}
	for _, i := range []int{1, 2} {
		scoped, err := Facts(cl, map[protocol.Key]bool{want[i].Key(): true}, false)
		if err != nil || len(scoped) != 1 || scoped[0].Key() != want[i].Key() || len(scoped[0].Destinations) != len(want[i].Destinations) {
			t.Errorf("in the scope of %s: %+v, %v", want[i].Key(), scoped, err)
		}
	}

	next := []protocol.Service{want[0], want[1], want[2]}
	next[0].Scheduler = "wlc"
	next[1].Persistence = 60
	next[2].Destinations = []protocol.Destination{tun("2001:2:0:1::183", 80, 5, protocol.Tunnel{Type: protocol.TunnelGUE, Port: 6081}), want[2].Destinations[1]}
	next[0].Destinations = next[0].Destinations[:1]
	steps := Diff(open, next, got)
	var shown []string
	for _, c := range change.Changes(steps) {
		shown = append(shown, fmt.Sprintf("%c %s  %s", c.Action, c.Address, c.Shown()))
	}
	if w := "~ ipvs fwmark/1  scheduler=rr persistence=300 => scheduler=wlc persistence=300\n" +
		"- ipvs fwmark/1 -> 198.18.1.184:0  weight=2 fwd=tunnel tun=gre,csum\n" +
		"~ ipvs fwmark6/1  scheduler=wrr persistence=0 => scheduler=wrr persistence=60\n" +
		"~ ipvs tcp/[2001:2::180]:80 -> [2001:2:0:1::183]:80  weight=1 fwd=tunnel tun=gue:6080 => weight=5 fwd=tunnel tun=gue:6081\n" +
		"- ipvs udp/[2001:2::180]:53  scheduler=rr persistence=60 destinations=1"; strings.Join(shown, "\n") != w {
		t.Errorf("changes:\n%s\nwant\n%s", strings.Join(shown, "\n"), w)
	}
	run(t, cl, steps)
	if got, err = Facts(cl, nil, true); err != nil || !reflect.DeepEqual(got, next) {
		t.Errorf("after the update\n %+v, %v\nwant\n %+v", got, err, next)
	}

	run(t, cl, Diff(open, nil, got))
	if svcs, err := cl.Services(); err != nil || len(svcs) != 0 {
		t.Errorf("after removing them all: %+v, %v", svcs, err)
	}
}
