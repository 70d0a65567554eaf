package ipvs

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	cipvs "github.com/cloudflare/ipvs"

	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/protocol"
)

var (
	gueTunnel = protocol.Tunnel{Type: protocol.TunnelGUE, Port: 6080}
	greTunnel = protocol.Tunnel{Type: protocol.TunnelGRE, Checksum: true}
)

// A destination's tunnel is written as cloudflare/ipvs writes it, byte for byte (the kernel's
// IPVS_DEST_ATTR_TUN_TYPE, TUN_PORT and TUN_FLAGS: GUE 1, GRE 2; CSUM 1, REMCSUM 2), and read back
// as it was meant.
func TestTunnelEncoding(t *testing.T) {
	for _, tc := range []struct {
		tun   protocol.Tunnel
		typ   cipvs.TunnelType
		port  uint16
		flags cipvs.TunnelFlags
	}{
		{protocol.Tunnel{}, cipvs.IPIP, 0, cipvs.TunnelEncapNoChecksum},
		{gueTunnel, cipvs.GUE, 6080, cipvs.TunnelEncapNoChecksum},
		{protocol.Tunnel{Type: protocol.TunnelGUE, Port: 6080, Checksum: true}, cipvs.GUE, 6080, cipvs.TunnelEncapChecksum},
		{protocol.Tunnel{Type: protocol.TunnelGUE, Port: 1, RemoteChecksum: true}, cipvs.GUE, 1, cipvs.TunnelEncapRemoteChecksum},
		{protocol.Tunnel{Type: protocol.TunnelGUE, Port: 65535, Checksum: true, RemoteChecksum: true}, cipvs.GUE, 65535, cipvs.TunnelEncapChecksum | cipvs.TunnelEncapRemoteChecksum},
		{protocol.Tunnel{Type: protocol.TunnelGRE}, cipvs.GRE, 0, cipvs.TunnelEncapNoChecksum},
		{greTunnel, cipvs.GRE, 0, cipvs.TunnelEncapChecksum},
	} {
		t.Run(tc.tun.String(), func(t *testing.T) {
			d := destToKernel(protocol.Destination{Address: rip, Port: 80, Weight: 1, Forward: protocol.ForwardTunnel, Tunnel: tc.tun})
			if d.TunnelType != tc.typ || d.TunnelPort != tc.port || d.TunnelFlags != tc.flags {
				t.Errorf("kernel destination: type %d port %d flags %d; want %d %d %d", d.TunnelType, d.TunnelPort, d.TunnelFlags, tc.typ, tc.port, tc.flags)
			}
			for _, cmd := range []Cmd{NewDest, SetDest} {
				w := Write{Cmd: cmd, Service: svc, Dest: d}
				msg := appendWrite(nil, 0x24, flagRequest, 1, w)
				ms, _ := parseMessages(msg)
				if want := cloudflareMessage(t, w); !bytes.Equal(ms[0].data, want) {
					t.Errorf("%d: encoding differs from cloudflare/ipvs's\n got %x\nwant %x", cmd, ms[0].data, want)
				}
				back, err := decodeDest(ms[0].data[genlHdrLen:], cipvs.INET)
				if err != nil {
					t.Fatal(err)
				}
				if got, err := tunnelOf(back); err != nil || got != tc.tun {
					t.Errorf("read back %+v, %v", got, err)
				}
			}
		})
	}
}

// The kernel keeps whatever tunnel port and flags it is given, but acts only on GUE's port, GUE's
// and GRE's checksum and GUE's remote checksum: the rest is not drift. An unknown type is an error.
func TestTunnelOfIgnoresWhatTheKernelIgnores(t *testing.T) {
	for _, tc := range []struct {
		d    cipvs.Destination
		want protocol.Tunnel
	}{
		{cipvs.Destination{TunnelType: cipvs.IPIP, TunnelPort: 6080, TunnelFlags: 3}, protocol.Tunnel{}},
		{cipvs.Destination{TunnelType: cipvs.GRE, TunnelPort: 6080, TunnelFlags: cipvs.TunnelEncapRemoteChecksum}, protocol.Tunnel{Type: protocol.TunnelGRE}},
		{cipvs.Destination{TunnelType: cipvs.GUE, TunnelPort: 6080, TunnelFlags: 4}, gueTunnel},
	} {
		if got, err := tunnelOf(tc.d); err != nil || got != tc.want {
			t.Errorf("%+v: %+v, %v; want %+v", tc.d, got, err, tc.want)
		}
	}
	if _, err := tunnelOf(cipvs.Destination{TunnelType: 3}); err == nil || !strings.Contains(err.Error(), "unknown tunnel type 3") {
		t.Errorf("type 3: %v", err)
	}
}

// Through the batching client and a kernel that keeps what it is given: GUE and GRE destinations
// are created with their tunnels, read back equal (no steps), and a changed tunnel (port, type,
// flags) is one update of the destination, rendered "tun=…".
func TestTunnelDiffAndFacts(t *testing.T) {
	cl, k := testClient(t)
	open := func() (Kernel, error) { return cl, nil }
	want := []protocol.Service{{Protocol: "tcp", Address: vip, Port: 80, Scheduler: "rr", Destinations: []protocol.Destination{
		{Address: netip.MustParseAddr("198.18.1.1"), Port: 80, Weight: 1, Forward: protocol.ForwardTunnel, Tunnel: gueTunnel},
		{Address: netip.MustParseAddr("198.18.1.2"), Port: 80, Weight: 1, Forward: protocol.ForwardTunnel, Tunnel: greTunnel},
	}}}
	run(t, cl, Diff(open, want, nil))
	got, err := Facts(cl, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read back\n %+v\nwant\n %+v", got, want)
	}
	if steps := Diff(open, want, got); len(steps) != 0 {
		t.Errorf("steps on a table that matches: %v", change.Changes(steps))
	}
	want[0].Destinations[0].Tunnel.Port = 6081
	want[0].Destinations[1].Tunnel = protocol.Tunnel{}
	steps := Diff(open, want, got)
	var shown []string
	for _, c := range change.Changes(steps) {
		shown = append(shown, fmt.Sprintf("%c %s  %s", c.Action, c.Address, c.Shown()))
	}
	if w := "~ ipvs tcp/198.18.48.180:80 -> 198.18.1.1:80  weight=1 fwd=tunnel tun=gue:6080 => weight=1 fwd=tunnel tun=gue:6081\n" +
		"~ ipvs tcp/198.18.48.180:80 -> 198.18.1.2:80  weight=1 fwd=tunnel tun=gre,csum => weight=1 fwd=tunnel"; strings.Join(shown, "\n") != w {
		t.Errorf("changes:\n%s\nwant\n%s", strings.Join(shown, "\n"), w)
	}
	sends := len(k.sends)
	run(t, cl, steps)
	if n := len(k.sends) - sends; n != 1 {
		t.Errorf("%d datagrams for two updates", n)
	}
	for _, m := range k.sends[len(k.sends)-1] {
		if Cmd(m.data[0]) != SetDest {
			t.Errorf("command %d, want SET_DEST", m.data[0])
		}
	}
	if got, _ = Facts(cl, nil, true); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after the update\n %+v\nwant\n %+v", got, want)
	}
}

// With tunnels, the destinations of many services are dumped over netlink, not read from
// /proc/net/ip_vs, which does not carry the tunnel type.
func TestTunnelsAreReadOverNetlink(t *testing.T) {
	cl, k := testClient(t)
	if err := load(t, cl, procMin); err != nil {
		t.Fatal(err)
	}
	if err := cl.Flush(); err != nil {
		t.Fatal(err)
	}
	svcs, err := cl.Services()
	if err != nil {
		t.Fatal(err)
	}
	cl.proc = t.TempDir() + "/ip_vs"
	if err := os.WriteFile(cl.proc, []byte("IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sends := len(k.sends)
	dss, err := cl.Destinations(svcs, true)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(k.sends) - sends; n != len(svcs) {
		t.Errorf("%d netlink dumps for %d services", n, len(svcs))
	}
	for i, ds := range dss {
		if len(ds) != 10 {
			t.Errorf("service %d: %d destinations", i, len(ds))
		}
	}
}
