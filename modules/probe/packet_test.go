package probe

import (
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tunplan/tunplan/modules/protocol"
)

var (
	dip  = netip.MustParseAddr("198.18.0.11")   // the director's address, the probes' source
	vip  = netip.MustParseAddr("198.18.10.182") // the service's VIP
	rip1 = netip.MustParseAddr("198.18.1.21")
	rip2 = netip.MustParseAddr("198.18.2.22")
	rip3 = netip.MustParseAddr("198.18.3.23")
	rip4 = netip.MustParseAddr("198.18.4.24")
)

// rfc1071 is the Internet checksum written out the long way, independently of Checksum: add up
// every 16-bit big-endian word (a last odd byte padded with zero) in 64 bits, fold the carries back
// in until 16 bits remain, complement.
func rfc1071(b []byte) uint16 {
	var sum uint64
	for i := 0; i < len(b); i += 2 {
		w := uint64(b[i]) << 8
		if i+1 < len(b) {
			w |= uint64(b[i+1])
		}
		sum += w
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(^sum)
}

// tcpChecksumInput is the pseudo-header and segment an IPv4 packet's TCP checksum covers.
func tcpChecksumInput(pkt []byte) []byte {
	hl := int(pkt[0]&0x0f) * 4
	seg := pkt[hl:]
	in := append([]byte{}, pkt[12:20]...)
	in = append(in, 0, 6, byte(len(seg)>>8), byte(len(seg)))
	return append(in, seg...)
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// put16 writes a checksum into a byte slice.
func put16(b []byte, v uint16) { b[0], b[1] = byte(v>>8), byte(v) }

// The RFC 1071 example (section 3): the words 0001 f203 f4f5 f6f7 sum to ddf2, whose complement is
// the checksum; and Checksum agrees with the long way on random data of every parity, in parts.
func TestChecksum(t *testing.T) {
	if got := Checksum([]byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}); got != ^uint16(0xddf2) {
		t.Errorf("RFC 1071 example: %#04x, want %#04x", got, ^uint16(0xddf2))
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 300; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		if got, want := Checksum(b), rfc1071(b); got != want {
			t.Fatalf("%d bytes: %#04x, want %#04x", n, got, want)
		}
		if n%2 == 0 && n >= 12 {
			if got, want := Checksum(b[:12], b[12:]), rfc1071(b); got != want {
				t.Fatalf("%d bytes in two parts: %#04x, want %#04x", n, got, want)
			}
		}
	}
}

// A probe's SYN, byte by byte as tcpdump -x would show it, with the checksums worked out here by
// the long way (and, checked by hand, 0x91b2 and 0x65b9).
func TestSYNBytes(t *testing.T) {
	got := SYNSegment(netip.AddrPortFrom(dip, 40000), netip.AddrPortFrom(vip, 80), 0x1234, 0x01020304).Marshal()
	want := unhex(t, `
		45 00 00 2c  12 34 40 00  40 06 00 00  c6 12 00 0b  c6 12 0a b6
		9c 40 00 50  01 02 03 04  00 00 00 00  60 02 fa f0  00 00 00 00  02 04 05 b4`)
	// version 4, IHL 5; length 44; ID 0x1234; DF; TTL 64, TCP; 198.18.0.11 > 198.18.10.182
	// 40000 > 80; seq 0x01020304; ack 0; 24-byte header, SYN, window 64240; urgent 0; MSS 1460
	put16(want[10:], rfc1071(want[:20]))
	put16(want[36:], rfc1071(tcpChecksumInput(want)))
	if want[10] != 0x91 || want[11] != 0xb2 || want[36] != 0x65 || want[37] != 0xb9 {
		t.Fatalf("the test's own checksums are %x and %x, not 91b2 and 65b9", want[10:12], want[36:38])
	}
	if !bytes.Equal(got, want) {
		t.Errorf("SYN:\n got %x\nwant %x", got, want)
	}
}

// The RST that closes a half-open connection: no options, no ACK, seq = the SYN-ACK's ack.
func TestRSTBytes(t *testing.T) {
	got := RSTSegment(netip.AddrPortFrom(dip, 40000), netip.AddrPortFrom(vip, 80), 0x1234, 0x01020305).Marshal()
	want := unhex(t, `
		45 00 00 28  12 34 40 00  40 06 00 00  c6 12 00 0b  c6 12 0a b6
		9c 40 00 50  01 02 03 05  00 00 00 00  50 04 00 00  00 00 00 00`)
	put16(want[10:], rfc1071(want[:20]))
	put16(want[36:], rfc1071(tcpChecksumInput(want)))
	if !bytes.Equal(got, want) {
		t.Errorf("RST:\n got %x\nwant %x", got, want)
	}
}

// Real SYN-ACKs with MSS 1460. The first is Linux 6.18's answer to the SYN of TestSYNBytes's shape
// (10.9.0.2:40000 > 10.9.0.1:80, ISN 0x01020304), read from a tun device; the second a TCP header
// from a public capture (192.168.80.200:513 > 192.168.80.1:51025), checked with its pseudo-header.
func TestRealSYNACK(t *testing.T) {
	pkt := unhex(t, `4500002c 00004000 400626b8 0a090001 0a090002
		00509c40 7d5897cc 01020305 6012faf0 d3540000 020405b4`)
	if rfc1071(pkt[:20]) != 0 || Checksum(pkt[:20]) != 0 {
		t.Errorf("IPv4 header checksum does not verify")
	}
	if rfc1071(tcpChecksumInput(pkt)) != 0 || Checksum(tcpChecksumInput(pkt)) != 0 {
		t.Errorf("TCP checksum does not verify")
	}
	s, err := ParseTCP(pkt)
	if err != nil {
		t.Fatal(err)
	}
	want := Segment{Src: netip.MustParseAddr("10.9.0.1"), Dst: netip.MustParseAddr("10.9.0.2"), ID: 0,
		SrcPort: 80, DstPort: 40000, Seq: 0x7d5897cc, Ack: 0x01020305, Flags: SYN | ACK, Window: 64240, MSS: 1460}
	if s != want {
		t.Errorf("parsed\n %+v\nwant\n %+v", s, want)
	}
	// The SYN Linux answered with it is the one Marshal builds.
	syn := SYNSegment(netip.MustParseAddrPort("10.9.0.2:40000"), netip.MustParseAddrPort("10.9.0.1:80"), 0x1234, 0x01020304).Marshal()
	if want := unhex(t, `4500002c 12344000 40061484 0a090002 0a090001
		9c400050 01020304 00000000 6002faf0 e88a0000 020405b4`); !bytes.Equal(syn, want) {
		t.Errorf("SYN:\n got %x\nwant %x", syn, want)
	}

	tcp := unhex(t, `0201c751 696cd5be db4ff9d7 601216d0 81860000 020405b4`)
	pseudo := append(netip.MustParseAddr("192.168.80.200").AsSlice(), netip.MustParseAddr("192.168.80.1").AsSlice()...)
	pseudo = append(pseudo, 0, 6, 0, byte(len(tcp)))
	if Checksum(pseudo, tcp) != 0 || rfc1071(append(pseudo, tcp...)) != 0 {
		t.Errorf("public SYN-ACK: TCP checksum does not verify")
	}
	// Wrapped in an IPv4 header (checksum left 0: parsing does not check it, as a capture may
	// see packets whose checksum a virtual NIC left to the kernel).
	ip := unhex(t, `4500002c 00004000 40060000 c0a850c8 c0a85001`)
	s, err = ParseTCP(append(ip, tcp...))
	if err != nil {
		t.Fatal(err)
	}
	if s.SrcPort != 513 || s.DstPort != 51025 || s.Seq != 1768740286 || s.Ack != 0xdb4ff9d7 || s.Flags != SYN|ACK || s.Window != 5840 || s.MSS != 1460 {
		t.Errorf("public SYN-ACK parsed as %+v", s)
	}
}

// Linux's usual SYN-ACK options (MSS, SACK permitted, timestamps, NOP, window scale) in any order,
// and options that end early or lie about their length.
func TestMSSOption(t *testing.T) {
	cases := []struct {
		opts string
		mss  uint16
	}{
		{"020405b4 0402080a 00000001 00000002 01030307", 1460},
		{"0402080a 00000001 00000002 01030307 020405a0", 1440},
		{"01010101 020405b4", 1460},
		{"0402 0000", 0},                // SACK permitted, end of options
		{"0402 00 00 020405b4", 0},      // MSS after the end of options
		{"0403 020405b4 000000", 0},     // a length that swallows the MSS
		{"0400", 0},                     // a length below 2
		{"0202 05b4", 0},                // MSS with length 2: not an MSS option
		{"08ff 0000 0000 0000 0000", 0}, // a length past the header
	}
	for _, c := range cases {
		o := unhex(t, c.opts)
		if got := mssOption(o); got != c.mss {
			t.Errorf("options %s: MSS %d, want %d", c.opts, got, c.mss)
		}
	}
}

func TestParseTCPRejects(t *testing.T) {
	good := SYNSegment(netip.AddrPortFrom(dip, 40000), netip.AddrPortFrom(vip, 80), 1, 2).Marshal()
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte{}, good...)) }
	cases := map[string][]byte{
		"empty":            nil,
		"IPv6":             mod(func(b []byte) []byte { b[0] = 0x60; return b }),
		"short IHL":        mod(func(b []byte) []byte { b[0] = 0x44; return b }),
		"UDP":              mod(func(b []byte) []byte { b[9] = 17; return b }),
		"a later fragment": mod(func(b []byte) []byte { b[7] = 1; return b }),
		"cut TCP header":   good[:30],
		"total length cut": mod(func(b []byte) []byte { b[3] = 30; return b }),
		"data offset 4":    mod(func(b []byte) []byte { b[32] = 0x40; return b }),
		"data offset 15":   mod(func(b []byte) []byte { b[32] = 0xf0; return b }),
	}
	for name, b := range cases {
		if s, err := ParseTCP(b); err == nil {
			t.Errorf("%s: parsed as %+v", name, s)
		}
	}
	if _, err := ParseTCP(good); err != nil {
		t.Errorf("the good one: %v", err)
	}
	// Trailing bytes (Ethernet padding) past the total length are not options.
	s, err := ParseTCP(append(append([]byte{}, good...), 0, 0))
	if err != nil || s.MSS != 1460 {
		t.Errorf("padded: %+v %v", s, err)
	}
}

// ipip wraps an inner packet as the director's kernel sends it to rip.
func ipip(rip netip.Addr, inner []byte) []byte {
	h := unhexMust(`45000000 abcd4000 40040000 c612000b 00000000`)
	put16(h[2:], uint16(20+len(inner)))
	copy(h[16:20], rip.AsSlice())
	put16(h[10:], rfc1071(h))
	return append(h, inner...)
}

// icmpError is an ICMP error from `from` to the director quoting `quoted`, cut to `quote` bytes.
func icmpError(from netip.Addr, typ, code uint8, mtu uint16, quoted []byte, quote int) []byte {
	q := quoted[:min(quote, len(quoted))]
	m := append([]byte{typ, code, 0, 0, 0, 0, byte(mtu >> 8), byte(mtu)}, q...)
	put16(m[2:], rfc1071(m))
	h := unhexMust(`45000000 00000000 40010000 00000000 c612000b`)
	put16(h[2:], uint16(20+len(m)))
	copy(h[12:16], from.AsSlice())
	put16(h[10:], rfc1071(h))
	return append(h, m...)
}

func unhexMust(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

func TestParseICMP(t *testing.T) {
	syn := SYNSegment(netip.AddrPortFrom(dip, 40000), netip.AddrPortFrom(vip, 80), 0x1234, 7).Marshal()
	e, err := ParseICMP(icmpError(rip1, 3, 2, 0, ipip(rip1, syn), 28))
	if err != nil {
		t.Fatal(err)
	}
	if e.From != rip1 || e.Type != 3 || e.Code != 2 || e.QDst != rip1 || e.QSrc != dip || e.QProto != 4 || len(e.QPayload) != 8 {
		t.Errorf("protocol unreachable: %+v", e)
	}
	if got, want := e.String(), "ICMP protocol unreachable from 198.18.1.21"; got != want {
		t.Errorf("String: %q, want %q", got, want)
	}
	e, err = ParseICMP(icmpError(rip1, 3, 4, 1400, ipip(rip1, syn), 100))
	if err != nil || e.MTU != 1400 || !strings.Contains(e.String(), "fragmentation needed (next-hop MTU 1400)") {
		t.Errorf("fragmentation needed: %+v %v %q", e, err, e.String())
	}
	e, err = ParseICMP(icmpError(vip, 11, 0, 0, syn, 28))
	if err != nil || e.QProto != 6 || e.QID != 0x1234 || e.String() != "ICMP time exceeded from 198.18.10.182" {
		t.Errorf("time exceeded: %+v %v", e, err)
	}
	echo := icmpError(rip1, 0, 0, 0, syn, 28)
	if _, err := ParseICMP(echo); err == nil {
		t.Errorf("an echo reply parsed as an error")
	}
	if _, err := ParseICMP(icmpError(rip1, 3, 1, 0, syn, 12)); err == nil {
		t.Errorf("an error quoting 12 bytes parsed")
	}
	if _, err := ParseICMP(syn); err == nil {
		t.Errorf("a SYN parsed as ICMP")
	}
}

// Whatever the capture reads, parsing and matching neither panic nor settle a probe wrongly.
func FuzzParse(f *testing.F) {
	syn := SYNSegment(netip.AddrPortFrom(dip, 40000), netip.AddrPortFrom(vip, 80), 0x1234, 7).Marshal()
	f.Add(syn)
	f.Add(icmpError(rip1, 3, 2, 0, ipip(rip1, syn), 28))
	f.Add(icmpError(vip, 3, 13, 0, syn, 200))
	dgram := UDPDatagram(netip.AddrPortFrom(dip, 40001), netip.AddrPortFrom(vip, 53), 0x1235, []byte("query")).Marshal()
	f.Add(UDPDatagram(netip.AddrPortFrom(vip, 53), netip.AddrPortFrom(dip, 40001), 0, []byte("qu")).Marshal())
	f.Add(icmpError(vip, 3, 3, 0, dgram, 200))
	f.Add(icmpError(rip1, 3, 2, 0, ipip(rip1, dgram), 48))
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := ParseTCP(b); err == nil && s.MSS != 0 && len(b) < 44 {
			t.Errorf("an MSS option in %d bytes", len(b))
		}
		if d, err := ParseUDP(b); err == nil && len(d.Payload) > len(b)-28 {
			t.Errorf("a payload of %d bytes in %d", len(d.Payload), len(b))
		}
		_, _ = ParseICMP(b)
		batch := &Batch{flights: []*flight{
			{res: &protocol.ProbeResult{Probe: protocol.Probe{Protocol: "tcp", VIP: vip, Port: 80, RIP: rip1, Source: dip}}, sport: 40000, isn: 6, id: 0x1234},
			{res: &protocol.ProbeResult{Probe: protocol.Probe{Protocol: "udp", VIP: vip, Port: 53, RIP: rip1, Source: dip, Payload: protocol.Payload{Send: "query", Expect: "qu"}}}, udp: true, sport: 40001, id: 0x1235},
		}}
		batch.answer(discard{}, b, time.Now())
	})
}

type discard struct{}

func (discard) Send(netip.Addr, []byte) error  { return nil }
func (discard) Recv(time.Time) ([]byte, error) { return nil, os.ErrDeadlineExceeded }
func (discard) Close() error                   { return nil }
