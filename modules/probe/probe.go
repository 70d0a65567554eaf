// Package probe tests a director's paths to its realservers as IPVS uses them (`tunplan verify`,
// OpProbe): for each destination it sends what IPVS would forward for a client, a TCP SYN from the
// director's address to VIP:port wrapped in IPIP to the realserver, and captures what comes back
// straight from the realserver (direct return): a SYN-ACK (the path works; it is reset at once so
// nothing stays half-open), a RST (nothing listens), an ICMP error, or nothing. A UDP destination
// whose service has a probe in the plan gets a datagram with the plan's payload instead, and its
// reply must start with the plan's expected bytes; an ICMP port unreachable says nothing listens.
//
// The packet code (building the SYN, RST and datagram, reading answers, matching them to probes, the
// capture filter) is plain Go and unit-tested; the sockets are behind Wire (wire_linux.go).
package probe

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.org/x/net/bpf"

	"github.com/tunplan/tunplan/modules/protocol"
)

// Wire is how probes reach the network.
type Wire interface {
	// Send sends payload (an IPv4 packet) to rip inside IPIP: the kernel adds the outer header.
	Send(rip netip.Addr, payload []byte) error
	// Recv returns the next captured IPv4 packet the filter kept, or an error wrapping
	// os.ErrDeadlineExceeded when none came before deadline.
	Recv(deadline time.Time) ([]byte, error)
	Close() error
}

// DefaultTimeout is how long a request's probes wait for their answers when it names no timeout.
const DefaultTimeout = time.Second

// Batch is the probes of one request, sent together and answered through one capture: each with
// its own source port and IPv4 identification (and a TCP probe its own initial sequence number).
type Batch struct {
	flights []*flight
	results []protocol.ProbeResult
	lo, hi  uint16 // the smallest and largest source port in use
}

// flight is one probe that is sent: what it sent, what identifies its answer, and what it saw.
type flight struct {
	res   *protocol.ProbeResult
	udp   bool // a datagram carrying res.Send, not a SYN
	sport uint16
	isn   uint32 // TCP
	id    uint16
	sent  time.Time
	done  bool
}

// NewBatch prepares probes: TCP ones, and UDP ones with a payload to send, get distinct random
// source ports from [lo, hi] (the ephemeral range) and distinct IPv4 identifications, TCP ones random
// initial sequence numbers; UDP ones without a payload are not probed. Every probe sent needs IPv4
// VIP, RIP and Source and a port.
func NewBatch(probes []protocol.Probe, lo, hi uint16, rnd *rand.Rand) (*Batch, error) {
	b := &Batch{results: make([]protocol.ProbeResult, len(probes)), lo: hi, hi: lo}
	var sent []int
	for i, p := range probes {
		b.results[i] = protocol.ProbeResult{Probe: p}
		switch {
		case p.Protocol == "udp" && p.Send == "":
			b.results[i].Outcome = protocol.ProbeNotProbed
			b.results[i].Detail = "the plan gives this UDP service no probe to send"
			continue
		case p.Protocol != "tcp" && p.Protocol != "udp":
			return nil, fmt.Errorf("probe %d: unknown protocol %q", i+1, p.Protocol)
		}
		if err := check(p); err != nil {
			return nil, fmt.Errorf("probe %d: %w", i+1, err)
		}
		sent = append(sent, i)
	}
	if lo == 0 || hi < lo || int(hi-lo)+1 < len(sent) {
		return nil, fmt.Errorf("%d probes need as many source ports: the range %d-%d has too few", len(sent), lo, hi)
	}
	ports, ids := map[uint16]bool{}, map[uint16]bool{0: true}
	for _, i := range sent {
		f := &flight{res: &b.results[i], udp: probes[i].Protocol == "udp"}
		if !f.udp {
			f.isn = rnd.Uint32()
		}
		for f.sport == 0 || ports[f.sport] {
			f.sport = lo + uint16(rnd.UintN(uint(hi-lo)+1))
		}
		for ids[f.id] {
			f.id = uint16(rnd.Uint32())
		}
		ports[f.sport], ids[f.id] = true, true
		b.lo, b.hi = min(b.lo, f.sport), max(b.hi, f.sport)
		b.flights = append(b.flights, f)
	}
	return b, nil
}

func check(p protocol.Probe) error {
	for _, a := range []struct {
		what string
		addr netip.Addr
	}{{"VIP", p.VIP}, {"RIP", p.RIP}, {"source", p.Source}} {
		if !a.addr.Is4() || a.addr.IsUnspecified() {
			return fmt.Errorf("%s %v is not an IPv4 address", a.what, a.addr)
		}
	}
	if p.Port == 0 {
		return errors.New("port 0")
	}
	switch {
	case p.Protocol == "tcp" && p.Payload != (protocol.Payload{}):
		return errors.New("a TCP probe carries no payload")
	case len(p.Send) > protocol.MaxProbePayload:
		return fmt.Errorf("a payload of %d bytes: at most %d", len(p.Send), protocol.MaxProbePayload)
	case len(p.Expect) > protocol.MaxProbePayload:
		return fmt.Errorf("an expected reply of %d bytes: at most %d", len(p.Expect), protocol.MaxProbePayload)
	}
	return nil
}

// Empty reports whether the batch sends nothing (no TCP probe, no UDP probe with a payload).
func (b *Batch) Empty() bool { return len(b.flights) == 0 }

// Filter is the capture filter for the batch's answers (see Filter): TCP from the VIPs of its TCP
// probes, UDP from the VIPs and RIPs of its UDP probes (a reply from the RIP is a wrong reply, worth
// telling), ICMP errors.
func (b *Batch) Filter() ([]bpf.RawInstruction, error) {
	var vips, udpSrcs []netip.Addr
	for _, f := range b.flights {
		if f.udp {
			udpSrcs = append(udpSrcs, f.res.VIP, f.res.RIP)
		} else {
			vips = append(vips, f.res.VIP)
		}
	}
	return Filter(vips, udpSrcs, b.lo, b.hi)
}

// Run sends every SYN and datagram, then reads answers until each probe has one or timeout has
// passed since the first was sent; a SYN-ACK is answered at once with a RST through the tunnel, and
// so is each TCP probe left unanswered at the end (a SYN-ACK may have been lost on its way back). It
// returns the results in the order of the probes; an error only if the capture failed.
func (b *Batch) Run(w Wire, timeout time.Duration, now func() time.Time) ([]protocol.ProbeResult, error) {
	if b.Empty() {
		return b.results, nil
	}
	deadline := now().Add(timeout)
	pending := 0
	for _, f := range b.flights {
		f.sent = now()
		if err := w.Send(f.res.RIP, f.request()); err != nil {
			f.finish(protocol.ProbeNoAnswer, "sending the "+f.what()+": "+err.Error())
			continue
		}
		pending++
	}
	var rerr error
	for pending > 0 && now().Before(deadline) {
		pkt, err := w.Recv(deadline)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			rerr = fmt.Errorf("capture: %w", err)
			break
		}
		if b.answer(w, pkt, now()) {
			pending--
		}
	}
	for _, f := range b.flights {
		if f.done {
			continue
		}
		f.finish(protocol.ProbeNoAnswer, "")
		if !f.udp {
			// Nothing came back, yet the realserver may hold the connection half-open.
			_ = w.Send(f.res.RIP, RSTSegment(f.src(), f.dst(), f.id, f.isn+1).Marshal())
		}
	}
	return b.results, rerr
}

// request is the packet the probe sends inside IPIP: its SYN, or its datagram.
func (f *flight) request() []byte {
	if f.udp {
		return UDPDatagram(f.src(), f.dst(), f.id, []byte(f.res.Send)).Marshal()
	}
	return SYNSegment(f.src(), f.dst(), f.id, f.isn).Marshal()
}

func (f *flight) what() string {
	if f.udp {
		return "datagram"
	}
	return "SYN"
}

// answer matches a captured packet to the probe it answers, if any, and records what it says;
// it reports whether that settled a probe.
func (b *Batch) answer(w Wire, pkt []byte, at time.Time) bool {
	if s, err := ParseTCP(pkt); err == nil {
		for _, f := range b.flights {
			if f.done || f.udp || !f.answeredBy(s) {
				continue
			}
			f.res.RTTMicros = max(at.Sub(f.sent).Microseconds(), 1)
			if s.Flags&RST != 0 {
				f.finish(protocol.ProbeRefused, "")
				return true
			}
			f.res.MSS = s.MSS
			f.finish(protocol.ProbeOK, "")
			// The realserver now holds a half-open connection: close it as the client would.
			rst := RSTSegment(f.src(), f.dst(), f.id, s.Ack)
			if err := w.Send(f.res.RIP, rst.Marshal()); err != nil {
				f.res.Detail = "sending the RST that closes the half-open connection: " + err.Error()
			}
			return true
		}
		return false
	}
	if d, err := ParseUDP(pkt); err == nil {
		for _, f := range b.flights {
			if f.done || !f.udp || !f.repliedBy(d) {
				continue
			}
			f.res.RTTMicros = max(at.Sub(f.sent).Microseconds(), 1)
			switch {
			case d.Src != f.res.VIP:
				f.finish(protocol.ProbeWrongReply, fmt.Sprintf("the reply came from %s, not from the VIP: a client drops it; "+
					"the service must answer from the address it was asked on (bind it to the VIP, or reply with IP_PKTINFO)",
					netip.AddrPortFrom(d.Src, d.SrcPort)))
			case !strings.HasPrefix(string(d.Payload), string(f.res.Expect)):
				f.finish(protocol.ProbeWrongReply, "reply does not start with the expected bytes: got "+prefix(d.Payload, len(f.res.Expect)))
			default:
				f.finish(protocol.ProbeOK, "")
			}
			return true
		}
		return false
	}
	if e, err := ParseICMP(pkt); err == nil {
		for _, f := range b.flights {
			if f.done || !f.about(e) {
				continue
			}
			if f.udp && e.QProto == protoUDP && e.Type == icmpUnreachable && e.Code == 3 {
				// The realserver unwrapped the datagram and has no socket for VIP:port.
				f.res.RTTMicros = max(at.Sub(f.sent).Microseconds(), 1)
				f.finish(protocol.ProbeRefused, e.String())
				return true
			}
			f.finish(protocol.ProbeNoAnswer, explain(e, f))
			return true
		}
	}
	return false
}

// prefix renders the start of a reply that did not match an expected prefix of n bytes: at least
// 16 bytes, at most 64, in hex, then as text when it is printable, and the reply's length.
func prefix(b []byte, n int) string {
	n = min(max(n, 16), 64, len(b))
	s := hex.EncodeToString(b[:n])
	if n < len(b) {
		s += "…"
	}
	printable := n > 0
	for _, c := range b[:n] {
		if c < 0x20 || c > 0x7e {
			printable = false
			break
		}
	}
	if printable {
		s += fmt.Sprintf(" (%q)", b[:n])
	}
	return s + fmt.Sprintf(", %d bytes", len(b))
}

func (f *flight) src() netip.AddrPort { return netip.AddrPortFrom(f.res.Source, f.sport) }
func (f *flight) dst() netip.AddrPort { return netip.AddrPortFrom(f.res.VIP, f.res.Port) }

func (f *flight) finish(o protocol.ProbeOutcome, detail string) {
	f.done = true
	f.res.Outcome = o
	if detail != "" {
		f.res.Detail = detail
	}
}

// answeredBy tells whether s answers the probe's SYN: from VIP:port to Source:sport, acknowledging
// the SYN (ISN+1), with SYN or RST set.
func (f *flight) answeredBy(s Segment) bool {
	return s.Src == f.res.VIP && s.SrcPort == f.res.Port && s.Dst == f.res.Source && s.DstPort == f.sport &&
		s.Flags&ACK != 0 && s.Ack == f.isn+1 && s.Flags&(SYN|RST) != 0
}

// repliedBy tells whether d replies to the probe's datagram: from port to Source:sport, sent by the
// VIP as it should be, or by the RIP (a service that answers from the realserver's own address).
func (f *flight) repliedBy(d Datagram) bool {
	return (d.Src == f.res.VIP || d.Src == f.res.RIP) && d.SrcPort == f.res.Port && d.Dst == f.res.Source && d.DstPort == f.sport
}

// about tells whether an ICMP error is about the probe's packet: either its IPIP packet to RIP
// (quoting the outer header, then at least the inner header's first 8 bytes, with its ID), or its
// SYN or datagram after the realserver unwrapped it (quoting its header and ports; whoever sent the
// error, the realserver from the VIP or its own address, or a host on the way back).
func (f *flight) about(e ICMPError) bool {
	q := e.QPayload
	proto := byte(protoTCP)
	if f.udp {
		proto = protoUDP
	}
	switch e.QProto {
	case protoIPIP:
		if e.QDst != f.res.RIP || len(q) < 8 || q[0]>>4 != 4 || uint16(q[4])<<8|uint16(q[5]) != f.id {
			return false
		}
		if len(q) >= ipv4Len { // the inner protocol, addresses and ports, when quoted, must agree too
			hl := int(q[0]&0x0f) * 4
			inner := netip.AddrFrom4([4]byte(q[16:20]))
			if q[9] != proto || inner != f.res.VIP || len(q) >= hl+4 && (uint16(q[hl])<<8|uint16(q[hl+1]) != f.sport ||
				uint16(q[hl+2])<<8|uint16(q[hl+3]) != f.res.Port) {
				return false
			}
		}
		return true
	case proto:
		return e.QSrc == f.res.Source && e.QDst == f.res.VIP && e.QID == f.id && len(q) >= 4 &&
			uint16(q[0])<<8|uint16(q[1]) == f.sport && uint16(q[2])<<8|uint16(q[3]) == f.res.Port
	}
	return false
}

// explain says what an ICMP error about a probe means.
func explain(e ICMPError, f *flight) string {
	s := e.String()
	switch {
	case e.QProto == protoIPIP && e.Type == icmpUnreachable && e.Code == 2 && e.From == f.res.RIP:
		s += ": the realserver does not take IPIP (is the ipip module loaded?)"
	case e.QProto == protoIPIP && e.Type == icmpUnreachable && e.Code == 3 && e.From == f.res.RIP:
		s += ": the realserver has no tunnel that takes the IPIP packet (is tunl0 up?)"
	case e.QProto == protoIPIP:
		s += ", about the IPIP packet to the realserver"
	case e.Type == icmpUnreachable && (e.Code == 3 || e.Code == 9 || e.Code == 10 || e.Code == 13):
		s += ": the realserver unwrapped the " + f.what() + " and rejected it (a firewall rule?)"
	default:
		s += ", about the " + f.what() + " the realserver unwrapped"
	}
	return s
}
