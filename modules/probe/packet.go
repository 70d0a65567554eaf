package probe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// TCP flags.
const (
	FIN = 0x01
	SYN = 0x02
	RST = 0x04
	PSH = 0x08
	ACK = 0x10
)

// IP protocol numbers.
const (
	protoICMP = 1
	protoIPIP = 4
	protoTCP  = 6
	protoUDP  = 17
)

const (
	ipv4Len   = 20
	tcpLen    = 20
	udpLen    = 8
	ttl       = 64
	window    = 64240 // what Linux offers in a SYN (44 × 1460)
	clientMSS = 1460  // the MSS a probe's SYN advertises, as a client on Ethernet would
)

// Segment is an IPv4 packet that carries a TCP segment without data: what a probe sends (a SYN,
// then a RST) and the answer it hears (a SYN-ACK or a RST).
type Segment struct {
	Src, Dst         netip.Addr
	ID               uint16 // the IPv4 identification
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	Flags            uint8
	Window           uint16
	MSS              uint16 // the MSS option; 0: none
}

// Marshal renders the segment as a 20-byte IPv4 header (DF, TTL 64, no options) and a TCP header
// (with the MSS option when MSS is set), both checksums computed: the bytes a raw IPIP socket sends
// as its payload unchanged.
func (s Segment) Marshal() []byte {
	tl := tcpLen
	if s.MSS != 0 {
		tl += 4
	}
	b := make([]byte, ipv4Len+tl)
	src, dst := ipv4Header(b, s.Src, s.Dst, protoTCP, s.ID)
	t := b[ipv4Len:]
	binary.BigEndian.PutUint16(t[0:], s.SrcPort)
	binary.BigEndian.PutUint16(t[2:], s.DstPort)
	binary.BigEndian.PutUint32(t[4:], s.Seq)
	binary.BigEndian.PutUint32(t[8:], s.Ack)
	t[12] = byte(tl/4) << 4
	t[13] = s.Flags
	binary.BigEndian.PutUint16(t[14:], s.Window)
	if s.MSS != 0 {
		t[20], t[21] = 2, 4
		binary.BigEndian.PutUint16(t[22:], s.MSS)
	}
	binary.BigEndian.PutUint16(t[16:], Checksum(pseudoHeader(src, dst, protoTCP, len(t)), t))
	return b
}

// ipv4Header writes the 20-byte IPv4 header (DF, TTL 64, no options) of the packet b, whose length
// is the packet's, with its checksum, and returns the addresses for the pseudo-header.
func ipv4Header(b []byte, s, d netip.Addr, proto byte, id uint16) (src, dst [4]byte) {
	ip := b[:ipv4Len]
	ip[0] = 0x45 // version 4, 5 words
	binary.BigEndian.PutUint16(ip[2:], uint16(len(b)))
	binary.BigEndian.PutUint16(ip[4:], id)
	binary.BigEndian.PutUint16(ip[6:], 0x4000) // DF
	ip[8] = ttl
	ip[9] = proto
	src, dst = s.As4(), d.As4()
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	binary.BigEndian.PutUint16(ip[10:], Checksum(ip))
	return src, dst
}

// Datagram is an IPv4 packet that carries a UDP datagram: what a UDP probe sends (the plan's
// payload) and the reply it hears.
type Datagram struct {
	Src, Dst         netip.Addr
	ID               uint16 // the IPv4 identification
	SrcPort, DstPort uint16
	Payload          []byte
}

// Marshal renders the datagram as a 20-byte IPv4 header (DF, TTL 64, no options) and a UDP header
// with its checksum (RFC 768: over the pseudo-header too; a sum of 0 is sent as 0xffff), then the
// payload.
func (d Datagram) Marshal() []byte {
	b := make([]byte, ipv4Len+udpLen+len(d.Payload))
	src, dst := ipv4Header(b, d.Src, d.Dst, protoUDP, d.ID)
	u := b[ipv4Len:]
	binary.BigEndian.PutUint16(u[0:], d.SrcPort)
	binary.BigEndian.PutUint16(u[2:], d.DstPort)
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	copy(u[udpLen:], d.Payload)
	sum := Checksum(pseudoHeader(src, dst, protoUDP, len(u)), u)
	if sum == 0 {
		sum = 0xffff // 0 would say "no checksum"
	}
	binary.BigEndian.PutUint16(u[6:], sum)
	return b
}

// UDPDatagram is the datagram a client at src sends to dst with payload; id is its IPv4
// identification.
func UDPDatagram(src, dst netip.AddrPort, id uint16, payload []byte) Datagram {
	return Datagram{Src: src.Addr(), Dst: dst.Addr(), ID: id, SrcPort: src.Port(), DstPort: dst.Port(), Payload: payload}
}

// ParseUDP reads an IPv4 packet that carries UDP: addresses, ports and the payload (up to the UDP
// length, or as much as the capture kept). Like ParseTCP, it does not check the checksums.
func ParseUDP(b []byte) (Datagram, error) {
	src, dst, proto, id, u, err := ipv4(b)
	if err != nil {
		return Datagram{}, err
	}
	if proto != protoUDP {
		return Datagram{}, fmt.Errorf("IP protocol %d, not UDP", proto)
	}
	if len(u) < udpLen {
		return Datagram{}, fmt.Errorf("UDP header cut short (%d bytes)", len(u))
	}
	n := int(binary.BigEndian.Uint16(u[4:]))
	if n < udpLen {
		return Datagram{}, fmt.Errorf("bad UDP length %d", n)
	}
	return Datagram{Src: src, Dst: dst, ID: id, SrcPort: binary.BigEndian.Uint16(u[0:]), DstPort: binary.BigEndian.Uint16(u[2:]),
		Payload: u[udpLen:min(n, len(u))]}, nil
}

// pseudoHeader is what the TCP and UDP checksums cover besides the segment (RFC 793 section 3.1,
// RFC 768).
func pseudoHeader(src, dst [4]byte, proto byte, length int) []byte {
	p := make([]byte, 12)
	copy(p[0:4], src[:])
	copy(p[4:8], dst[:])
	p[9] = proto
	binary.BigEndian.PutUint16(p[10:], uint16(length))
	return p
}

// Checksum is the Internet checksum (RFC 1071) of the parts as one byte string: the one's
// complement of the one's complement sum of its 16-bit words. Every part but the last must have
// an even length. A header whose checksum field holds its checksum sums to 0.
func Checksum(parts ...[]byte) uint16 {
	var sum uint32
	for _, p := range parts {
		for len(p) >= 2 {
			sum += uint32(p[0])<<8 | uint32(p[1])
			p = p[2:]
		}
		if len(p) == 1 {
			sum += uint32(p[0]) << 8
		}
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// SYNSegment is the SYN a client at src would send to dst to open a connection: isn its initial
// sequence number, id its IPv4 identification.
func SYNSegment(src, dst netip.AddrPort, id uint16, isn uint32) Segment {
	return Segment{Src: src.Addr(), Dst: dst.Addr(), ID: id, SrcPort: src.Port(), DstPort: dst.Port(),
		Seq: isn, Flags: SYN, Window: window, MSS: clientMSS}
}

// RSTSegment is the RST that aborts a half-open connection from src to dst whose SYN-ACK
// acknowledged ack: its sequence number is ack, the next one the peer expects (RFC 793, Reset
// Generation), so the peer accepts it.
func RSTSegment(src, dst netip.AddrPort, id uint16, ack uint32) Segment {
	return Segment{Src: src.Addr(), Dst: dst.Addr(), ID: id, SrcPort: src.Port(), DstPort: dst.Port(),
		Seq: ack, Flags: RST}
}

// ipv4 splits a captured IPv4 packet into its header fields and its payload. The payload ends at
// the packet's total length, or where the capture was cut short.
func ipv4(b []byte) (src, dst netip.Addr, proto byte, id uint16, payload []byte, err error) {
	if len(b) < ipv4Len || b[0]>>4 != 4 {
		return src, dst, 0, 0, nil, errors.New("not an IPv4 packet")
	}
	hl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:]))
	if hl < ipv4Len || total < hl || len(b) < hl {
		return src, dst, 0, 0, nil, fmt.Errorf("bad IPv4 header (length %d of %d)", hl, total)
	}
	if binary.BigEndian.Uint16(b[6:])&0x1fff != 0 {
		return src, dst, 0, 0, nil, errors.New("a fragment")
	}
	src, dst = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
	return src, dst, b[9], binary.BigEndian.Uint16(b[4:]), b[hl:min(total, len(b))], nil
}

// ParseTCP reads an IPv4 packet that carries TCP: addresses, ports, sequence and acknowledgment
// numbers, flags, window and the MSS option. It does not check the checksums: a capture on the
// receiving host may see a checksum a virtual NIC left for the kernel to verify.
func ParseTCP(b []byte) (Segment, error) {
	src, dst, proto, id, t, err := ipv4(b)
	if err != nil {
		return Segment{}, err
	}
	if proto != protoTCP {
		return Segment{}, fmt.Errorf("IP protocol %d, not TCP", proto)
	}
	if len(t) < tcpLen {
		return Segment{}, fmt.Errorf("TCP header cut short (%d bytes)", len(t))
	}
	off := int(t[12]>>4) * 4
	if off < tcpLen || off > len(t) {
		return Segment{}, fmt.Errorf("bad TCP data offset %d", off)
	}
	s := Segment{Src: src, Dst: dst, ID: id,
		SrcPort: binary.BigEndian.Uint16(t[0:]), DstPort: binary.BigEndian.Uint16(t[2:]),
		Seq: binary.BigEndian.Uint32(t[4:]), Ack: binary.BigEndian.Uint32(t[8:]),
		Flags: t[13], Window: binary.BigEndian.Uint16(t[14:])}
	s.MSS = mssOption(t[tcpLen:off])
	return s, nil
}

// mssOption finds the MSS option (kind 2, length 4) among TCP options; 0 if there is none.
func mssOption(opts []byte) uint16 {
	for len(opts) > 0 {
		switch opts[0] {
		case 0: // end of options
			return 0
		case 1: // no-operation
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || opts[1] < 2 || int(opts[1]) > len(opts) {
			return 0
		}
		if opts[0] == 2 && opts[1] == 4 {
			return binary.BigEndian.Uint16(opts[2:])
		}
		opts = opts[opts[1]:]
	}
	return 0
}

// ICMPError is an ICMP error (destination unreachable, time exceeded) and what it quotes of the
// packet that caused it: its IPv4 header and the first bytes after it.
type ICMPError struct {
	From       netip.Addr // who sent the error
	Type, Code uint8
	MTU        uint16 // fragmentation needed: the next hop's MTU
	// The quoted packet's header: a probe's IPIP packet (protocol 4) when a host on the way to the
	// realserver, or the realserver, could not take it; a probe's SYN (protocol 6) or
	// datagram (17) when the realserver unwrapped it and then refused it.
	QSrc, QDst netip.Addr
	QProto     uint8
	QID        uint16
	QPayload   []byte // what the error quotes after that header (at least 8 bytes by RFC 792; Linux sends more)
}

// ICMP types that report errors about a packet.
const (
	icmpUnreachable  = 3
	icmpTimeExceeded = 11
)

// ParseICMP reads an IPv4 packet that carries an ICMP destination unreachable or time exceeded.
func ParseICMP(b []byte) (ICMPError, error) {
	src, _, proto, _, m, err := ipv4(b)
	if err != nil {
		return ICMPError{}, err
	}
	if proto != protoICMP {
		return ICMPError{}, fmt.Errorf("IP protocol %d, not ICMP", proto)
	}
	if len(m) < 8 || (m[0] != icmpUnreachable && m[0] != icmpTimeExceeded) {
		return ICMPError{}, errors.New("not an ICMP error")
	}
	e := ICMPError{From: src, Type: m[0], Code: m[1]}
	if e.Type == icmpUnreachable && e.Code == 4 {
		e.MTU = binary.BigEndian.Uint16(m[6:])
	}
	q := m[8:]
	if len(q) < ipv4Len || q[0]>>4 != 4 || int(q[0]&0x0f)*4 < ipv4Len || len(q) < int(q[0]&0x0f)*4 {
		return ICMPError{}, errors.New("ICMP error without the quoted IPv4 header")
	}
	e.QSrc, e.QDst = netip.AddrFrom4([4]byte(q[12:16])), netip.AddrFrom4([4]byte(q[16:20]))
	e.QProto, e.QID = q[9], binary.BigEndian.Uint16(q[4:])
	e.QPayload = q[int(q[0]&0x0f)*4:]
	return e, nil
}

// String says what the error means for a probe, in words.
func (e ICMPError) String() string {
	what := fmt.Sprintf("ICMP type %d code %d", e.Type, e.Code)
	if e.Type == icmpTimeExceeded {
		what = "ICMP time exceeded"
	} else if n, ok := unreachable[e.Code]; ok {
		what = "ICMP " + n
	}
	if e.MTU != 0 {
		what += fmt.Sprintf(" (next-hop MTU %d)", e.MTU)
	}
	return what + " from " + e.From.String()
}

var unreachable = map[uint8]string{
	0: "network unreachable", 1: "host unreachable", 2: "protocol unreachable", 3: "port unreachable",
	4: "fragmentation needed", 5: "source route failed", 6: "destination network unknown",
	7: "destination host unknown", 9: "network administratively prohibited",
	10: "host administratively prohibited", 11: "network unreachable for TOS", 12: "host unreachable for TOS",
	13: "communication administratively prohibited",
}
