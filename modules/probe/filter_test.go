package probe

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/net/bpf"
)

// vm runs a filter on packets as the kernel would on an AF_PACKET SOCK_DGRAM socket (they start
// at the IPv4 header) and returns what the program returns: 0 drops, n keeps n bytes at most.
func vm(t *testing.T, raw []bpf.RawInstruction) func([]byte) int {
	t.Helper()
	ins, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatalf("the filter does not disassemble: %v", raw)
	}
	v, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatalf("NewVM: %v", err)
	}
	return func(b []byte) int {
		n, err := v.Run(b)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		return n
	}
}

// synAck is a SYN-ACK from src:sport to dst:dport, as a realserver answers a probe.
func synAck(src netip.AddrPort, dst netip.AddrPort) []byte {
	return Segment{Src: src.Addr(), Dst: dst.Addr(), SrcPort: src.Port(), DstPort: dst.Port(), Seq: 9, Ack: 10,
		Flags: SYN | ACK, Window: 64240, MSS: 1460}.Marshal()
}

func TestFilter(t *testing.T) {
	other := netip.MustParseAddr("203.0.113.9")
	vip2 := netip.MustParseAddr("198.18.10.183")
	raw, err := Filter([]netip.Addr{vip, vip2, vip}, nil, 40000, 40100)
	if err != nil {
		t.Fatal(err)
	}
	run := vm(t, raw)
	to := func(port uint16) netip.AddrPort { return netip.AddrPortFrom(dip, port) }
	syn := SYNSegment(to(40050), netip.AddrPortFrom(vip, 80), 0x1234, 7).Marshal()
	withOptions := func(b []byte) []byte { // the same packet with a 4-byte IPv4 option (NOPs)
		out := append([]byte{0x46}, b[1:20]...)
		out = append(out, 1, 1, 1, 0)
		return append(out, b[20:]...)
	}
	udp := synAck(netip.AddrPortFrom(vip, 80), to(40050))
	udp[9] = 17
	fragment := synAck(netip.AddrPortFrom(vip, 80), to(40050))
	binary.BigEndian.PutUint16(fragment[6:], 0x2000|185) // more fragments, offset 1480
	first := synAck(netip.AddrPortFrom(vip, 80), to(40050))
	binary.BigEndian.PutUint16(first[6:], 0x2000) // more fragments, offset 0: the first one
	v6 := synAck(netip.AddrPortFrom(vip, 80), to(40050))
	v6[0] = 0x65
	quotedUDP := ipip(rip1, syn)
	quotedUDP[9] = 17

	cases := []struct {
		name string
		pkt  []byte
		keep bool
	}{
		{"SYN-ACK from the VIP to a probe's port", synAck(netip.AddrPortFrom(vip, 80), to(40050)), true},
		{"RST from the other VIP, at the bottom of the range", Segment{Src: vip2, Dst: dip, SrcPort: 443, DstPort: 40000, Flags: RST | ACK}.Marshal(), true},
		{"at the top of the range", synAck(netip.AddrPortFrom(vip, 8080), to(40100)), true},
		{"with IPv4 options", withOptions(synAck(netip.AddrPortFrom(vip, 80), to(40050))), true},
		{"the first fragment", first, true},
		{"from another address", synAck(netip.AddrPortFrom(other, 80), to(40050)), false},
		{"below the range", synAck(netip.AddrPortFrom(vip, 80), to(39999)), false},
		{"above the range", synAck(netip.AddrPortFrom(vip, 80), to(40101)), false},
		{"ports the other way round", synAck(netip.AddrPortFrom(vip, 40050), to(80)), false},
		{"UDP (no UDP probe in the batch)", udp, false},
		{"a later fragment", fragment, false},
		{"not IPv4", v6, false},
		{"cut short", synAck(netip.AddrPortFrom(vip, 80), to(40050))[:21], false},
		{"IPIP (the director's own traffic)", ipip(rip1, syn), false},
		{"ICMP protocol unreachable quoting IPIP, 8 bytes", icmpError(rip1, 3, 2, 0, ipip(rip1, syn), 28), true},
		{"ICMP port unreachable quoting IPIP, all of it", icmpError(rip1, 3, 3, 0, ipip(rip1, syn), 200), true},
		{"ICMP administratively prohibited quoting the SYN", icmpError(vip, 3, 13, 0, syn, 28), true},
		{"ICMP time exceeded quoting IPIP", icmpError(other, 11, 0, 0, ipip(rip1, syn), 28), true},
		{"ICMP unreachable quoting UDP (no UDP probe in the batch)", icmpError(rip1, 3, 3, 0, quotedUDP, 28), false},
		{"ICMP echo reply", icmpError(rip1, 0, 0, 0, syn, 28), false},
		{"ICMP redirect", icmpError(rip1, 5, 1, 0, ipip(rip1, syn), 28), false},
		{"ICMP cut before the quote", icmpError(rip1, 3, 2, 0, ipip(rip1, syn), 28)[:30], false},
	}
	for _, c := range cases {
		n := run(c.pkt)
		if c.keep && n != SnapLen { // the kernel keeps that much, or the whole packet if shorter
			t.Errorf("%s: kept %d bytes, want %d", c.name, n, SnapLen)
		}
		if !c.keep && n != 0 {
			t.Errorf("%s: kept %d bytes, want none", c.name, n)
		}
	}
}

// With more VIPs than a jump can skip, the filter checks only the destination port.
func TestFilterManyVIPs(t *testing.T) {
	var vips []netip.Addr
	for i := range 300 {
		vips = append(vips, netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}))
	}
	for _, n := range []int{maxFilteredSources, maxFilteredSources + 1, 300} {
		raw, err := Filter(vips[:n], nil, 40000, 40000)
		if err != nil {
			t.Fatalf("%d VIPs: %v", n, err)
		}
		run := vm(t, raw)
		if run(synAck(netip.AddrPortFrom(vips[n-1], 80), netip.AddrPortFrom(dip, 40000))) == 0 {
			t.Errorf("%d VIPs: the last VIP's SYN-ACK dropped", n)
		}
		fromOther := run(synAck(netip.MustParseAddrPort("203.0.113.9:80"), netip.AddrPortFrom(dip, 40000)))
		if n <= maxFilteredSources && fromOther != 0 || n > maxFilteredSources && fromOther == 0 {
			t.Errorf("%d VIPs: another source kept %d bytes", n, fromOther)
		}
		if run(synAck(netip.AddrPortFrom(vips[0], 80), netip.AddrPortFrom(dip, 40001))) != 0 {
			t.Errorf("%d VIPs: a port out of range kept", n)
		}
	}
}

func TestFilterRefusesIPv6(t *testing.T) {
	if _, err := Filter([]netip.Addr{netip.MustParseAddr("2001:db8::1")}, nil, 1, 2); err == nil {
		t.Error("an IPv6 VIP was accepted")
	}
	if _, err := Filter([]netip.Addr{vip}, []netip.Addr{vip, netip.MustParseAddr("2001:db8::1")}, 1, 2); err == nil {
		t.Error("an IPv6 UDP source was accepted")
	}
}

func TestDropAll(t *testing.T) {
	if n := vm(t, DropAll())(ipip(rip1, SYNSegment(netip.AddrPortFrom(dip, 1), netip.AddrPortFrom(vip, 80), 1, 1).Marshal())); n != 0 {
		t.Errorf("DropAll kept %d bytes", n)
	}
}
