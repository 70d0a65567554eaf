package probe

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tunplan/tunplan/modules/protocol"
)

// udpChecksumInput is the pseudo-header and datagram an IPv4 packet's UDP checksum covers.
func udpChecksumInput(pkt []byte) []byte {
	hl := int(pkt[0]&0x0f) * 4
	d := pkt[hl:]
	in := append([]byte{}, pkt[12:20]...)
	in = append(in, 0, 17, byte(len(d)>>8), byte(len(d)))
	return append(in, d...)
}

// A probe's datagram, byte by byte, with an odd-length payload; the checksums worked out here the
// long way (and, checked by hand, 0x91b0 and 0x0f2d).
func TestUDPBytes(t *testing.T) {
	got := UDPDatagram(netip.AddrPortFrom(dip, 40000), netip.AddrPortFrom(vip, 53), 0x1234, []byte("tunplan")).Marshal()
	want := unhex(t, `
		45 00 00 23  12 34 40 00  40 11 00 00  c6 12 00 0b  c6 12 0a b6
		9c 40 00 35  00 0f 00 00  74 75 6e 70 6c 61 6e`)
	// version 4, IHL 5; length 35; ID 0x1234; DF; TTL 64, UDP; 198.18.0.11 > 198.18.10.182
	// 40000 > 53; length 15; checksum; "tunplan"
	put16(want[10:], rfc1071(want[:20]))
	put16(want[26:], rfc1071(udpChecksumInput(want)))
	if want[10] != 0x91 || want[11] != 0xb0 || want[26] != 0x0f || want[27] != 0x2d {
		t.Fatalf("the test's own checksums are %x and %x, not 91b0 and 0f2d", want[10:12], want[26:28])
	}
	if !bytes.Equal(got, want) {
		t.Errorf("datagram:\n got %x\nwant %x", got, want)
	}
	if rfc1071(got[:20]) != 0 || rfc1071(udpChecksumInput(got)) != 0 {
		t.Errorf("the checksums do not verify")
	}
	d, err := ParseUDP(got)
	if err != nil || d.Src != dip || d.Dst != vip || d.ID != 0x1234 || d.SrcPort != 40000 || d.DstPort != 53 || string(d.Payload) != "tunplan" {
		t.Errorf("parsed back as %+v, %v", d, err)
	}
	// Even lengths, and every length up to the largest payload, verify the long way too.
	for _, n := range []int{0, 1, 2, 3, 64, 511, protocol.MaxProbePayload} {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i*7 + n)
		}
		b := UDPDatagram(netip.AddrPortFrom(dip, 50001), netip.AddrPortFrom(vip, 5353), 7, p).Marshal()
		if len(b) != 28+n || rfc1071(b[:20]) != 0 || rfc1071(udpChecksumInput(b)) != 0 || b[26]|b[27] == 0 {
			t.Errorf("%d bytes of payload: %x", n, b)
		}
	}
}

// Captured from Linux (6.x, this machine's kernel), through a tun device in a network namespace:
// the datagram its UDP socket at 10.9.0.1:40000 sent to 10.9.0.2:53 with "tunplan probe", which
// Marshal rebuilds byte for byte; and its ICMP port unreachable for a datagram Marshal built, sent
// to a port nothing listened on: Linux verifies a UDP checksum before it looks for the socket, so
// the ICMP error says the checksum was right. The error comes from the address the datagram was for
// (on a realserver: the VIP), and quotes it whole.
func TestRealUDP(t *testing.T) {
	linux := unhex(t, `45000029 98764000 40118e39 0a090001 0a090002
		9c400035 00154cfd 74756e70 6c616e20 70726f62 65`)
	if rfc1071(linux[:20]) != 0 || rfc1071(udpChecksumInput(linux)) != 0 {
		t.Fatalf("Linux's checksums do not verify")
	}
	ours := UDPDatagram(netip.MustParseAddrPort("10.9.0.1:40000"), netip.MustParseAddrPort("10.9.0.2:53"), 0x9876, []byte("tunplan probe")).Marshal()
	if !bytes.Equal(ours, linux) {
		t.Errorf("datagram:\n got %x\nwant %x", ours, linux)
	}

	sent := UDPDatagram(netip.MustParseAddrPort("10.9.0.2:40000"), netip.MustParseAddrPort("10.9.0.1:5353"), 0x4321, []byte("tunplan probe")).Marshal()
	if want := unhex(t, `45000029 43214000 4011e38e 0a090002 0a090001 9c4014e9 00153849 74756e70 6c616e20 70726f62 65`); !bytes.Equal(sent, want) {
		t.Fatalf("the datagram Linux refused:\n got %x\nwant %x", sent, want)
	}
	icmp := unhex(t, `45c00045 d0ac0000 40019537 0a090001 0a090002 03031138 00000000`)
	icmp = append(icmp, sent...)
	e, err := ParseICMP(icmp)
	if err != nil {
		t.Fatal(err)
	}
	if e.From.String() != "10.9.0.1" || e.Type != 3 || e.Code != 3 || e.QProto != 17 || e.QID != 0x4321 || !bytes.Equal(e.QPayload, sent[20:]) {
		t.Errorf("parsed %+v", e)
	}
	f := &flight{res: &protocol.ProbeResult{Probe: protocol.Probe{Protocol: "udp", VIP: netip.MustParseAddr("10.9.0.1"), Port: 5353,
		RIP: netip.MustParseAddr("10.9.0.7"), Source: netip.MustParseAddr("10.9.0.2"), Payload: protocol.Payload{Send: "tunplan probe"}}},
		udp: true, sport: 40000, id: 0x4321}
	b := &Batch{flights: []*flight{f}}
	if !b.answer(discard{}, icmp, t0) || f.res.Outcome != protocol.ProbeRefused || f.res.Detail != "ICMP port unreachable from 10.9.0.1" {
		t.Errorf("the port unreachable settled %+v", f.res)
	}
}

// A datagram whose sum comes to 0 carries 0xffff: 0 says it has no checksum.
func TestUDPChecksumZero(t *testing.T) {
	src, dst := netip.AddrPortFrom(dip, 40000), netip.AddrPortFrom(vip, 53)
	b := UDPDatagram(src, dst, 1, []byte{0, 0}).Marshal()
	word := []byte{b[26], b[27]} // with a zero payload word, the checksum is the word that zeroes it
	b = UDPDatagram(src, dst, 1, word).Marshal()
	if b[26] != 0xff || b[27] != 0xff {
		t.Errorf("checksum %x, want ffff", b[26:28])
	}
	if rfc1071(udpChecksumInput(b)) != 0 {
		t.Errorf("0xffff does not verify")
	}
}

func TestParseUDPRejects(t *testing.T) {
	good := UDPDatagram(netip.AddrPortFrom(vip, 53), netip.AddrPortFrom(dip, 40000), 1, []byte("reply")).Marshal()
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte{}, good...)) }
	cases := map[string][]byte{
		"empty":            nil,
		"TCP":              mod(func(b []byte) []byte { b[9] = 6; return b }),
		"a later fragment": mod(func(b []byte) []byte { b[7] = 1; return b }),
		"cut UDP header":   good[:27],
		"UDP length 7":     mod(func(b []byte) []byte { b[25] = 7; return b }),
	}
	for name, b := range cases {
		if d, err := ParseUDP(b); err == nil {
			t.Errorf("%s: parsed as %+v", name, d)
		}
	}
	// The payload ends at the UDP length (Ethernet padding after it is not data), or where the
	// capture cut the packet.
	padded := append(append([]byte{}, good...), 0, 0, 0)
	if d, err := ParseUDP(padded); err != nil || string(d.Payload) != "reply" {
		t.Errorf("padded: %+v %v", d, err)
	}
	if d, err := ParseUDP(good[:30]); err != nil || string(d.Payload) != "re" {
		t.Errorf("cut short: %+v %v", d, err)
	}
	if d, err := ParseUDP(mod(func(b []byte) []byte { b[25] = 10; return b })); err != nil || string(d.Payload) != "re" {
		t.Errorf("UDP length 10: %+v %v", d, err)
	}
}

func TestFilterUDP(t *testing.T) {
	other := netip.MustParseAddr("203.0.113.9")
	raw, err := Filter([]netip.Addr{vip}, []netip.Addr{vip, rip1, vip}, 40000, 40100)
	if err != nil {
		t.Fatal(err)
	}
	run := vm(t, raw)
	reply := func(src netip.AddrPort, dport uint16, n int) []byte {
		return UDPDatagram(src, netip.AddrPortFrom(dip, dport), 1, bytes.Repeat([]byte{'x'}, n)).Marshal()
	}
	sent := UDPDatagram(netip.AddrPortFrom(dip, 40050), netip.AddrPortFrom(vip, 53), 0x1234, []byte("query")).Marshal()
	fragment := reply(netip.AddrPortFrom(vip, 53), 40050, 10)
	fragment[7] = 185 // offset 1480
	cases := []struct {
		name string
		pkt  []byte
		keep int
	}{
		{"a reply from the VIP to a probe's port", reply(netip.AddrPortFrom(vip, 53), 40050, 10), UDPSnapLen},
		{"a large reply", reply(netip.AddrPortFrom(vip, 53), 40000, 1472), UDPSnapLen},
		{"a reply from the RIP", reply(netip.AddrPortFrom(rip1, 53), 40100, 10), UDPSnapLen},
		{"from another address", reply(netip.AddrPortFrom(other, 53), 40050, 10), 0},
		{"below the range", reply(netip.AddrPortFrom(vip, 53), 39999, 10), 0},
		{"above the range", reply(netip.AddrPortFrom(vip, 53), 40101, 10), 0},
		{"a later fragment", fragment, 0},
		{"the probe's own datagram", sent, 0},
		{"IPIP", ipip(rip1, sent), 0},
		{"ICMP port unreachable quoting the datagram", icmpError(vip, 3, 3, 0, sent, 200), SnapLen},
		{"ICMP port unreachable quoting IPIP", icmpError(rip1, 3, 3, 0, ipip(rip1, sent), 48), SnapLen},
		{"a SYN-ACK from the VIP still", synAck(netip.AddrPortFrom(vip, 80), netip.AddrPortFrom(dip, 40050)), SnapLen},
		{"a SYN-ACK from the RIP: not a TCP source", synAck(netip.AddrPortFrom(rip1, 80), netip.AddrPortFrom(dip, 40050)), 0},
	}
	for _, c := range cases {
		if n := run(c.pkt); n != c.keep {
			t.Errorf("%s: kept %d bytes, want %d", c.name, n, c.keep)
		}
	}
	// Only UDP probes: TCP answers are not kept.
	raw, err = Filter(nil, []netip.Addr{vip, rip1}, 40000, 40100)
	if err != nil {
		t.Fatal(err)
	}
	run = vm(t, raw)
	if n := run(synAck(netip.AddrPortFrom(vip, 80), netip.AddrPortFrom(dip, 40050))); n != 0 {
		t.Errorf("a SYN-ACK kept with UDP probes only: %d", n)
	}
	if n := run(reply(netip.AddrPortFrom(vip, 53), 40050, 10)); n != UDPSnapLen {
		t.Errorf("a reply dropped with UDP probes only")
	}
	if n := run(icmpError(vip, 3, 13, 0, synAck(netip.AddrPortFrom(dip, 40050), netip.AddrPortFrom(vip, 80)), 48)); n != 0 {
		t.Errorf("an ICMP error quoting TCP kept with UDP probes only: %d", n)
	}
	if n := run(icmpError(vip, 3, 3, 0, sent, 48)); n != SnapLen {
		t.Errorf("an ICMP error quoting UDP dropped with UDP probes only")
	}
}

// The most sources a filter compares, for TCP and UDP both, still assemble (every jump in reach);
// past that, the filter checks only the ports.
func TestFilterManyUDPSources(t *testing.T) {
	var srcs []netip.Addr
	for i := range 200 {
		srcs = append(srcs, netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}))
	}
	for _, n := range []int{maxFilteredSources, maxFilteredSources + 1, 200} {
		raw, err := Filter(srcs[:min(n, maxFilteredSources)], srcs[:n], 40000, 40000)
		if err != nil {
			t.Fatalf("%d sources: %v", n, err)
		}
		run := vm(t, raw)
		last := UDPDatagram(netip.AddrPortFrom(srcs[n-1], 53), netip.AddrPortFrom(dip, 40000), 1, nil).Marshal()
		fromOther := UDPDatagram(netip.MustParseAddrPort("203.0.113.9:53"), netip.AddrPortFrom(dip, 40000), 1, nil).Marshal()
		if run(last) == 0 {
			t.Errorf("%d sources: the last one's reply dropped", n)
		}
		if kept := run(fromOther); (n <= maxFilteredSources) != (kept == 0) {
			t.Errorf("%d sources: another source kept %d bytes", n, kept)
		}
		if run(synAck(netip.AddrPortFrom(srcs[maxFilteredSources-1], 80), netip.AddrPortFrom(dip, 40000))) == 0 {
			t.Errorf("%d sources: the last VIP's SYN-ACK dropped", n)
		}
	}
}

// udpProbe is a UDP probe of rip with a payload and the prefix its reply must start with.
func udpProbe(rip netip.Addr, send, expect string) protocol.Probe {
	return protocol.Probe{Protocol: "udp", VIP: vip, Port: 53, RIP: rip, Source: dip, Payload: protocol.Payload{Send: protocol.Bytes(send), Expect: protocol.Bytes(expect)}}
}

// sendUDP is the fake realserver's side of a UDP probe: the datagram must carry correct checksums,
// and it is answered as the realserver's behaviour says.
func (f *fakeNet) sendUDP(rip netip.Addr, payload []byte) error {
	if rfc1071(payload[:20]) != 0 || rfc1071(udpChecksumInput(payload)) != 0 {
		f.t.Errorf("sent to %s with a bad checksum: %x", rip, payload)
	}
	d, err := ParseUDP(payload)
	if err != nil {
		f.t.Fatalf("sent to %s: %v", rip, err)
	}
	f.sentUDP = append(f.sentUDP, sentDgram{rip, d})
	if f.noise != nil {
		for _, p := range f.noise(rip, Segment{Src: d.Src, Dst: d.Dst, ID: d.ID, SrcPort: d.SrcPort, DstPort: d.DstPort}) {
			f.arrive(f.rtt/2, p)
		}
	}
	reply := d.Payload // an echo, unless the table says otherwise
	if r, ok := f.replies[rip]; ok {
		reply = r
	}
	from := netip.AddrPortFrom(d.Dst, d.DstPort)
	switch f.rs[rip] {
	case listens:
		f.arrive(f.rtt, UDPDatagram(from, netip.AddrPortFrom(d.Src, d.SrcPort), 0, reply).Marshal())
	case fromRIP:
		f.arrive(f.rtt, UDPDatagram(netip.AddrPortFrom(rip, d.DstPort), netip.AddrPortFrom(d.Src, d.SrcPort), 0, reply).Marshal())
	case closed: // Linux answers from the address the datagram was for, quoting it whole
		f.arrive(f.rtt, icmpError(d.Dst, 3, 3, 0, payload, 548))
	case noIPIP:
		f.arrive(f.rtt, icmpError(rip, 3, 2, 0, ipip(rip, payload), 28))
	case firewalled:
		f.arrive(f.rtt, icmpError(rip, 3, 13, 0, payload, 200))
	}
	return nil
}

type sentDgram struct {
	rip netip.Addr
	d   Datagram
}

func TestRunUDP(t *testing.T) {
	rip5, rip6, rip7 := netip.MustParseAddr("198.18.5.25"), netip.MustParseAddr("198.18.6.26"), netip.MustParseAddr("198.18.7.27")
	n := newFakeNet(t, map[netip.Addr]behaviour{rip1: listens, rip2: closed, rip3: silent, rip4: noIPIP, rip5: firewalled, rip6: fromRIP, rip7: listens})
	n.replies = map[netip.Addr][]byte{rip7: []byte("NOPE, not what you asked for: a long answer that goes on and on")}
	query := "\x74\x70\x01\x00\x00\x01"
	probes := []protocol.Probe{
		udpProbe(rip1, query, "\x74\x70"),
		tcpProbe(80, rip1),
		udpProbe(rip2, query, "\x74\x70"),
		udpProbe(rip3, query, "\x74\x70"),
		udpProbe(rip4, query, "\x74\x70"),
		udpProbe(rip5, query, "\x74\x70"),
		udpProbe(rip6, query, "\x74\x70"),
		udpProbe(rip7, "ping", "PONG"),
		udpProbe(rip1, "any reply will do", ""),
		{Protocol: "udp", VIP: vip, Port: 53, RIP: rip1, Source: dip},
	}
	res, b := run(t, n, probes, time.Second)
	want := []struct {
		outcome protocol.ProbeOutcome
		rtt     int64
		detail  string
	}{
		{protocol.ProbeOK, 300, ""},
		{protocol.ProbeOK, 300, ""},
		{protocol.ProbeRefused, 300, "ICMP port unreachable from 198.18.10.182"},
		{protocol.ProbeNoAnswer, 0, ""},
		{protocol.ProbeNoAnswer, 0, "ICMP protocol unreachable from 198.18.4.24: the realserver does not take IPIP (is the ipip module loaded?)"},
		{protocol.ProbeNoAnswer, 0, "ICMP communication administratively prohibited from 198.18.5.25: the realserver unwrapped the datagram and rejected it (a firewall rule?)"},
		{protocol.ProbeWrongReply, 300, "the reply came from 198.18.6.26:53, not from the VIP: a client drops it; the service must answer from the address it was asked on (bind it to the VIP, or reply with IP_PKTINFO)"},
		{protocol.ProbeWrongReply, 300, `reply does not start with the expected bytes: got 4e4f50452c206e6f7420776861742079… ("NOPE, not what y"), 63 bytes`},
		{protocol.ProbeOK, 300, ""},
		{protocol.ProbeNotProbed, 0, "the plan gives this UDP service no probe to send"},
	}
	for i, w := range want {
		r := res[i]
		if r.Probe != probes[i] || r.Outcome != w.outcome || r.RTTMicros != w.rtt || r.MSS != 0 && i != 1 || r.Detail != w.detail {
			t.Errorf("probe %d: got %+v\nwant %+v", i+1, r, w)
		}
	}
	if !n.now.Equal(t0.Add(time.Second)) {
		t.Errorf("ended at %v, want the deadline (rip3 is silent)", n.now.Sub(t0))
	}
	// One datagram per UDP probe with a payload, in order, from its own port (none shared with the
	// TCP probe), to VIP:port inside IPIP to its RIP, with the plan's payload; no RST for UDP.
	if len(n.sentUDP) != 8 {
		t.Fatalf("sent %d datagrams, want 8: %+v", len(n.sentUDP), n.sentUDP)
	}
	ports := map[uint16]bool{}
	udp := 0
	for _, f := range b.flights {
		ports[f.sport] = true
		if !f.udp {
			continue
		}
		s := n.sentUDP[udp]
		udp++
		if s.rip != f.res.RIP || s.d.Src != dip || s.d.Dst != vip || s.d.DstPort != 53 || s.d.SrcPort != f.sport || s.d.ID != f.id || string(s.d.Payload) != string(f.res.Send) {
			t.Errorf("datagram %d: %+v to %s, flight %+v", udp, s.d, s.rip, f)
		}
	}
	if len(ports) != 9 {
		t.Errorf("%d source ports for 9 probes sent", len(ports))
	}
	if len(n.sent) != 2 || n.sent[0].seg.Flags != SYN || n.sent[1].seg.Flags != RST {
		t.Errorf("TCP packets sent: %+v, want the SYN and its RST", n.sent)
	}
}

// A UDP-only batch with every probe answered returns at once.
func TestRunUDPReturnsWhenAllAnswered(t *testing.T) {
	n := newFakeNet(t, map[netip.Addr]behaviour{rip1: listens, rip2: closed})
	res, _ := run(t, n, []protocol.Probe{udpProbe(rip1, "q", "q"), udpProbe(rip2, "q", "q")}, 5*time.Second)
	if res[0].Outcome != protocol.ProbeOK || res[1].Outcome != protocol.ProbeRefused || n.now.Sub(t0) != n.rtt || n.recvs != 2 {
		t.Errorf("results %+v after %v and %d reads", res, n.now.Sub(t0), n.recvs)
	}
}

// Packets that look like replies but are not a probe's are ignored: another port either way, another
// destination, another source (neither VIP nor RIP), a TCP segment on the ports, ICMP errors about
// another datagram (ID, ports, protocol); the probe's own reply still counts when it comes.
func TestRunUDPIgnoresStrays(t *testing.T) {
	n := newFakeNet(t, map[netip.Addr]behaviour{rip1: listens, rip2: silent})
	other := netip.MustParseAddr("198.18.0.12")
	n.noise = func(rip netip.Addr, s Segment) [][]byte {
		from, to := netip.AddrPortFrom(s.Dst, s.DstPort), netip.AddrPortFrom(s.Src, s.SrcPort)
		reply := func(from, to netip.AddrPort) []byte { return UDPDatagram(from, to, 0, []byte("q")).Marshal() }
		sent := UDPDatagram(to, from, s.ID, []byte("q")).Marshal()
		mod := func(f func(b []byte)) []byte { b := append([]byte{}, sent...); f(b); return b }
		return [][]byte{
			reply(netip.AddrPortFrom(from.Addr(), from.Port()+1), to),
			reply(from, netip.AddrPortFrom(to.Addr(), to.Port()+1)),
			reply(from, netip.AddrPortFrom(other, to.Port())),
			reply(netip.AddrPortFrom(other, from.Port()), to),
			Segment{Src: from.Addr(), Dst: to.Addr(), SrcPort: from.Port(), DstPort: to.Port(), Flags: RST | ACK}.Marshal(),
			icmpError(s.Dst, 3, 3, 0, mod(func(b []byte) { b[5]++ }), 200),   // another ID
			icmpError(s.Dst, 3, 3, 0, mod(func(b []byte) { b[21]++ }), 200),  // another source port
			icmpError(s.Dst, 3, 3, 0, mod(func(b []byte) { b[23]++ }), 200),  // another destination port
			icmpError(s.Dst, 3, 3, 0, mod(func(b []byte) { b[9] = 6 }), 200), // a TCP segment
			icmpError(rip, 3, 2, 0, ipip(rip, mod(func(b []byte) { b[9] = 6 })), 48),
			icmpError(rip4, 3, 2, 0, ipip(rip4, sent), 48),
		}
	}
	res, _ := run(t, n, []protocol.Probe{udpProbe(rip1, "q", "q"), udpProbe(rip2, "q", "q")}, time.Second)
	if res[0].Outcome != protocol.ProbeOK || res[0].RTTMicros != 300 || res[0].Detail != "" {
		t.Errorf("the listening realserver: %+v", res[0])
	}
	if res[1].Outcome != protocol.ProbeNoAnswer || res[1].Detail != "" {
		t.Errorf("the silent realserver: %+v", res[1])
	}
}

func TestNewBatchUDP(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	big := protocol.Bytes(strings.Repeat("x", protocol.MaxProbePayload+1))
	bad := []struct {
		p    protocol.Probe
		want string
	}{
		{udpProbe(rip1, string(big), ""), "probe 1: a payload of 1401 bytes: at most 1400"},
		{udpProbe(rip1, "q", string(big)), "probe 1: an expected reply of 1401 bytes: at most 1400"},
		{protocol.Probe{Protocol: "tcp", VIP: vip, Port: 80, RIP: rip1, Source: dip, Payload: protocol.Payload{Send: "q"}}, "probe 1: a TCP probe carries no payload"},
		{protocol.Probe{Protocol: "udp", VIP: vip, Port: 53, RIP: rip1, Payload: protocol.Payload{Send: "q"}}, "probe 1: source invalid IP is not an IPv4 address"},
	}
	for _, c := range bad {
		if _, err := NewBatch([]protocol.Probe{c.p}, 32768, 60999, rnd); err == nil || err.Error() != c.want {
			t.Errorf("%+v: got %v, want %q", c.p, err, c.want)
		}
	}
	// A UDP probe without a payload needs no address and no port: it is not sent.
	b, err := NewBatch([]protocol.Probe{{Protocol: "udp"}, udpProbe(rip1, string(big[1:]), string(big[1:]))}, 40000, 40000, rnd)
	if err != nil || len(b.flights) != 1 || !b.flights[0].udp || b.flights[0].sport != 40000 || b.flights[0].isn != 0 {
		t.Errorf("%+v %v", b, err)
	}
}

func TestPrefix(t *testing.T) {
	for _, c := range []struct {
		b    string
		n    int
		want string
	}{
		{"", 2, ", 0 bytes"},
		{"\x00\x01", 2, "0001, 2 bytes"},
		{"ok", 4, `6f6b ("ok"), 2 bytes`},
		{strings.Repeat("a", 20), 2, `61616161616161616161616161616161… ("aaaaaaaaaaaaaaaa"), 20 bytes`},
		{strings.Repeat("\xff", 100), 80, strings.Repeat("ff", 64) + "…, 100 bytes"},
	} {
		if got := prefix([]byte(c.b), c.n); got != c.want {
			t.Errorf("prefix(%q, %d) = %q, want %q", c.b, c.n, got, c.want)
		}
	}
}
