package ipvs

import (
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	cipvs "github.com/cloudflare/ipvs"

	"github.com/tunplan/tunplan/modules/protocol"
)

// procHeader is the first three lines of /proc/net/ip_vs.
const procHeader = "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n"

// The layout of ip_vs_info_seq_show (net/netfilter/ipvs/ip_vs_ctl.c), byte for byte: an IPv4
// service "%s  %08X:%04X %s %s " (the second %s: "ops " or ""), an IPv6 one "%s  [%pI6]:%04X %s ",
// a firewall-mark one "FWM  %08X %s %s" (no family), each followed by "persistent %d %08X" or
// nothing; destinations "  -> %08X:%04X      %-7s %-6d %-10d %-10d" and
// "  -> [%pI6]:%04X      %-7s %-6d %-10d %-10d". %pI6 prints eight groups of four lowercase digits.
func TestParseProcKernelLayout(t *testing.T) {
	text := procHeader +
		"TCP  C612302C:0050 rr  \n" +
		"  -> C61201B7:0050      Tunnel  1      0          0         \n" +
		"UDP  C612302C:0035 rr ops persistent 300 FFFFFFFF\n" +
		"  -> C61201B7:0035      Route   0      0          3         \n" +
		"TCP  [2001:0002:0000:0048:0000:0000:0000:0180]:0050 rr \n" +
		"  -> [2001:0002:0000:0001:0000:0000:0000:0183]:0050      Tunnel  1      4          0         \n" +
		"  -> C61201B8:0050      Tunnel  65535  0          0         \n" +
		"UDP  [2001:0002:0000:0048:0000:0000:0000:0180]:0035 sh persistent 60 80000000\n" +
		"FWM  00000001 rr persistent 300 FFFFFFFF\n" +
		"  -> C61201B7:0000      Tunnel  1      0          0         \n" +
		"FWM  0000000A wlc \n" +
		"  -> [2001:0002:0000:0001:0000:0000:0000:0183]:0000      Tunnel  2      0          0         \n" +
		"FWM  00000005 rr \n" +
		"  -> C61201B7:0000      Tunnel  1      0          0         \n" +
		"FWM  00000005 rr \n" +
		"  -> [2001:0002:0000:0001:0000:0000:0000:0183]:0000      Tunnel  1      0          0         \n" +
		"SCTP  C612302C:0009 rr  \n" +
		"  -> C61201B7:0009      Tunnel  1      0          0         \n" +
		"TCP  [2001:0002:0000:0048:0000:0000:0000:0181]:0050 rr \n" +
		"  -> [2001:0002:0000:0001:0000:0000:0000:zzzz]:0050      Tunnel  1      0          0         \n"
	got, err := parseProc([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr
	d := func(ip string, port uint16, fwd cipvs.ForwardType, w uint32) cipvs.Destination {
		fam := cipvs.INET
		if a(ip).Is6() {
			fam = cipvs.INET6
		}
		return cipvs.Destination{Address: a(ip), Port: port, FwdMethod: fwd, Weight: w, Family: fam}
	}
	want := map[procKey][]cipvs.Destination{
		{proto: cipvs.TCP, addr: a("198.18.48.44"), port: 80}:     {d("198.18.1.183", 80, cipvs.Tunnel, 1)},
		{proto: cipvs.UDP, addr: a("198.18.48.44"), port: 53}:     {d("198.18.1.183", 53, cipvs.DirectRoute, 0)},
		{proto: cipvs.TCP, addr: a("2001:2:0:48::180"), port: 80}: {d("2001:2:0:1::183", 80, cipvs.Tunnel, 1), d("198.18.1.184", 80, cipvs.Tunnel, 65535)},
		{proto: cipvs.UDP, addr: a("2001:2:0:48::180"), port: 53}: {},
		{fwmark: 1}:  {d("198.18.1.183", 0, cipvs.Tunnel, 1)},
		{fwmark: 10}: {d("2001:2:0:1::183", 0, cipvs.Tunnel, 2)},
		{proto: cipvs.SCTP, addr: a("198.18.48.44"), port: 9}: {d("198.18.1.183", 9, cipvs.Tunnel, 1)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parsed\n%v\nwant\n%v", got, want)
	}
	// Mark 5 is an IPv4 and an IPv6 service: /proc/net/ip_vs does not say which line is which.
	if _, ok := got[procKey{fwmark: 5}]; ok {
		t.Error("a mark listed twice was read")
	}
}

func TestHexAddrPort(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want netip.AddrPort
	}{
		{"C612302C:0050", netip.MustParseAddrPort("198.18.48.44:80")},
		{"[2001:0db8:0000:0000:0000:0000:0000:0001]:01BB", netip.MustParseAddrPort("[2001:db8::1]:443")},
		{"[0000:0000:0000:0000:0000:ffff:c612:302c]:0000", netip.MustParseAddrPort("[::ffff:198.18.48.44]:0")},
		{"[FE80:0000:0000:0000:0000:0000:0000:ABCD]:FFFF", netip.MustParseAddrPort("[fe80::abcd]:65535")},
	} {
		a, p, ok := hexAddrPort([]byte(tc.in))
		if !ok || netip.AddrPortFrom(a, p) != tc.want {
			t.Errorf("%s: %s %d %v, want %s", tc.in, a, p, ok, tc.want)
		}
	}
	for _, bad := range []string{"", "C612302C", "C612302C:050", "[2001:db8::1]:0050", "[2001:0db8:0000:0000:0000:0000:0000:0001:0050",
		"[2001:0db8:0000:0000:0000:0000:0000-0001]:0050", "[2001:0db8:0000:0000:0000:0000:0000:000g]:0050", "[2001:0db8:0000:0000:0000:0000:0000:0001]:005"} {
		if a, p, ok := hexAddrPort([]byte(bad)); ok {
			t.Errorf("%q parsed as %s %d", bad, a, p)
		}
	}
}

// procAP prints an address and port as ip_vs_info_seq_show does.
func procAP(a netip.Addr, port uint16) string {
	if a.Is4() {
		return hexAP(netip.AddrPortFrom(a, port))
	}
	b := a.As16()
	var g []string
	for i := 0; i < 16; i += 2 {
		g = append(g, fmt.Sprintf("%02x%02x", b[i], b[i+1]))
	}
	return fmt.Sprintf("[%s]:%04X", strings.Join(g, ":"), port)
}

// With many services, the destinations of IPv6 and firewall-mark services come from
// /proc/net/ip_vs too, but for a mark both families use: those two are dumped over netlink. Both
// ways give the same answer.
func TestProcIPv6AndFWMark(t *testing.T) {
	cl, k := testClient(t)
	var want []protocol.Service
	for i := range procMin {
		s := protocol.Service{Protocol: "tcp", Address: netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 15: byte(i)}), Port: 80, Scheduler: "rr"}
		switch i {
		case 0, 1:
			s = protocol.Service{FWMark: 7, Address: netip.IPv4Unspecified(), Scheduler: "rr"}
			if i == 1 {
				s.Address = netip.IPv6Unspecified()
			}
		case 2:
			s = protocol.Service{FWMark: 8, Address: netip.IPv6Unspecified(), Scheduler: "rr"}
		case 3:
			s = protocol.Service{FWMark: 9, Address: netip.IPv4Unspecified(), Scheduler: "rr"}
		}
		for j := range 3 {
			var d netip.Addr
			if s.Address.Is4() {
				d = netip.AddrFrom4([4]byte{198, 18, 1, byte(10*i + j)})
			} else {
				d = netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 0, 0, 0, 1, 14: byte(i), 15: byte(j)})
			}
			s.Destinations = append(s.Destinations, protocol.Destination{Address: d, Port: s.Port, Weight: uint32(j), Forward: protocol.ForwardTunnel})
		}
		want = append(want, s)
	}
	run(t, cl, Diff(func() (Kernel, error) { return cl, nil }, want, nil))
	svcs, err := cl.Services()
	if err != nil {
		t.Fatal(err)
	}
	overNetlink, err := cl.Destinations(svcs, false)
	if err != nil {
		t.Fatal(err)
	}

	var sb strings.Builder
	sb.WriteString(procHeader)
	for _, key := range k.order {
		s := k.info[key]
		if s.FWMark != 0 {
			fmt.Fprintf(&sb, "FWM  %08X %s \n", s.FWMark, s.Scheduler)
		} else {
			fmt.Fprintf(&sb, "TCP  %s %s \n", procAP(s.Address, s.Port), s.Scheduler)
		}
		for _, d := range k.svcs[key] {
			fmt.Fprintf(&sb, "  -> %s      %-7s %-6d %-10d %-10d\n", procAP(d.Address, d.Port), "Tunnel", d.Weight, 0, 0)
		}
	}
	got, dumps := destinationsFromProc(t, cl, k, sb.String(), svcs)
	if dumps != 2 {
		t.Errorf("%d netlink dumps, want 2 (fwmark/7 and fwmark6/7)", dumps)
	}
	norm := func(dss [][]cipvs.Destination) []string {
		var out []string
		for i, ds := range dss {
			var l []string
			for _, d := range ds {
				l = append(l, fmt.Sprintf("%s/%d/%d/%d", netip.AddrPortFrom(d.Address, d.Port), d.Family, d.FwdMethod, d.Weight))
			}
			sort.Strings(l)
			out = append(out, svcName(svcs[i])+": "+strings.Join(l, " "))
		}
		return out
	}
	if g, w := norm(got), norm(overNetlink); !reflect.DeepEqual(g, w) {
		t.Errorf("from /proc/net/ip_vs:\n%s\nover netlink:\n%s", strings.Join(g, "\n"), strings.Join(w, "\n"))
	}
	if g := strings.Join(norm(got), "\n"); !strings.Contains(g, "fwmark6/8: [2001:2:0:1::200]:0/10/2/0") || !strings.Contains(g, "fwmark/9: 198.18.1.30:0/2/2/0") {
		t.Errorf("the firewall-mark services' destinations:\n%s", g)
	}
}

// destinationsFromProc has cl read text as /proc/net/ip_vs for the destinations of svcs, and returns them with
// the number of netlink dumps the read took.
func destinationsFromProc(t *testing.T, cl *Client, k *fakeKernel, text string, svcs []cipvs.Service) ([][]cipvs.Destination, int) {
	t.Helper()
	cl.proc = t.TempDir() + "/ip_vs"
	if err := os.WriteFile(cl.proc, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	sends := len(k.sends)
	got, err := cl.Destinations(svcs, false)
	if err != nil {
		t.Fatal(err)
	}
	return got, len(k.sends) - sends
}

func hexAP(ap netip.AddrPort) string {
	a := ap.Addr().As4()
	return fmt.Sprintf("%02X%02X%02X%02X:%04X", a[0], a[1], a[2], a[3], ap.Port())
}

// TestProc: with many services, destinations come from /proc/net/ip_vs, and over netlink for the
// services it does not list in a form read here; both give the same answer.
func TestProc(t *testing.T) {
	cl, k := testClient(t)
	if err := load(t, cl, 40); err != nil {
		t.Fatal(err)
	}
	cl.Queue(Write{Cmd: SetDest, Service: benchService(3), Dest: destToKernel(protocol.Destination{Address: benchDest(2).Address, Port: 80, Weight: 0, Forward: "route"}), Name: "drain"})
	if err := cl.Flush(); err != nil {
		t.Fatal(err)
	}
	svcs, err := cl.Services()
	if err != nil {
		t.Fatal(err)
	}
	want, err := cl.Destinations(svcs, false) // over netlink
	if err != nil {
		t.Fatal(err)
	}
	// The kernel's layout (ip_vs_info_seq_show): the services the fake has, but the fifth, whose
	// lines are unreadable, and the sixth, left out; an IPv6 service and a fwmark one.
	var sb strings.Builder
	sb.WriteString("IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n")
	sb.WriteString("TCP  [2001:0db8:0000:0000:0000:0000:0000:0001]:0050 rr \n  -> [2001:0db8:0000:0000:0000:0000:0000:0002]:0050      Masq    1      0          0         \n")
	sb.WriteString("FWM  00000007 wlc persistent 300 FFFFFFFF\n  -> C612C801:0000      Route   1      0          0         \n")
	for i, s := range svcs {
		if i == 5 {
			continue
		}
		fmt.Fprintf(&sb, "TCP  %s rr %s\n", hexAP(netip.AddrPortFrom(s.Address, s.Port)), map[bool]string{true: "persistent 300 FFFFFFFF", false: ""}[i == 7])
		for _, d := range k.svcs[svcName(s)] {
			fwd := map[cipvs.ForwardType]string{cipvs.Tunnel: "Tunnel", cipvs.DirectRoute: "Route"}[d.FwdMethod]
			if i == 4 {
				fwd = "Bogus"
			}
			fmt.Fprintf(&sb, "  -> %s      %-7s %-6d %-10d %-10d\n", hexAP(netip.AddrPortFrom(d.Address, d.Port)), fwd, d.Weight, 3, 4)
		}
	}
	got, dumps := destinationsFromProc(t, cl, k, sb.String(), svcs)
	if dumps != 2 {
		t.Errorf("%d netlink dumps, want 2 (the services /proc/net/ip_vs did not give)", dumps)
	}
	norm := func(dss [][]cipvs.Destination) string {
		var out []string
		for _, ds := range dss {
			var l []string
			for _, d := range ds {
				l = append(l, fmt.Sprintf("%s:%d/%d/%d", d.Address, d.Port, d.FwdMethod, d.Weight))
			}
			sort.Strings(l)
			out = append(out, strings.Join(l, " "))
		}
		return strings.Join(out, "\n")
	}
	if norm(got) != norm(want) {
		t.Errorf("from /proc/net/ip_vs:\n%s\nover netlink:\n%s", norm(got), norm(want))
	}
	if !strings.Contains(norm(got), "198.18.200.3:80/3/0") {
		t.Errorf("the drained, routed destination is missing")
	}
	// Fewer services than procMin: netlink only.
	cl.proc = "/nonexistent"
	if _, err := cl.Destinations(svcs[:3], false); err != nil {
		t.Error(err)
	}
}
