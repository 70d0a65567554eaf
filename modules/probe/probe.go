// Package probe tests a director's paths to its realservers as IPVS uses them (`tunplan verify`,
// OpProbe): for each destination it sends what IPVS would forward for a client, a TCP SYN from the
// director's address to VIP:port wrapped in IPIP to the realserver, and captures what comes back
// straight from the realserver (direct return): a SYN-ACK (the path works; it is reset at once so
// nothing stays half-open), a RST (nothing listens), an ICMP error, or nothing.
//
// The packet code (building the SYN and RST, reading answers, matching them to probes, the capture
// filter) is plain Go and unit-tested; the sockets are behind Wire (wire_linux.go).
package probe

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
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
// its own source port, initial sequence number and IPv4 identification.
type Batch struct {
	flights []*flight
	results []protocol.ProbeResult
	lo, hi  uint16 // the smallest and largest source port in use
}

// flight is one TCP probe: what it sent, what identifies its answer, and what it saw.
type flight struct {
	res   *protocol.ProbeResult
	sport uint16
	isn   uint32
	id    uint16
	sent  time.Time
	done  bool
}

// NewBatch prepares probes: TCP ones get distinct random source ports from [lo, hi] (the ephemeral
// range), random initial sequence numbers and distinct IPv4 identifications; the others are not
// probed. Every TCP probe needs IPv4 VIP, RIP and Source and a port.
func NewBatch(probes []protocol.Probe, lo, hi uint16, rnd *rand.Rand) (*Batch, error) {
	b := &Batch{results: make([]protocol.ProbeResult, len(probes)), lo: hi, hi: lo}
	ntcp := 0
	for i, p := range probes {
		b.results[i] = protocol.ProbeResult{Probe: p}
		switch p.Protocol {
		case "tcp":
			if err := check(p); err != nil {
				return nil, fmt.Errorf("probe %d: %w", i+1, err)
			}
			ntcp++
		case "udp":
			b.results[i].Outcome = protocol.ProbeNotProbed
			b.results[i].Detail = "UDP destinations are not probed"
		default:
			return nil, fmt.Errorf("probe %d: unknown protocol %q", i+1, p.Protocol)
		}
	}
	if lo == 0 || hi < lo || int(hi-lo)+1 < ntcp {
		return nil, fmt.Errorf("%d probes need as many source ports: the range %d-%d has too few", ntcp, lo, hi)
	}
	ports, ids := map[uint16]bool{}, map[uint16]bool{0: true}
	for i := range b.results {
		if b.results[i].Protocol != "tcp" {
			continue
		}
		f := &flight{res: &b.results[i], isn: rnd.Uint32()}
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
	return nil
}

// Empty reports whether the batch sends nothing (no TCP probe).
func (b *Batch) Empty() bool { return len(b.flights) == 0 }

// Filter is the capture filter for the batch's answers (see Filter).
func (b *Batch) Filter() ([]bpf.RawInstruction, error) {
	var vips []netip.Addr
	for _, f := range b.flights {
		vips = append(vips, f.res.VIP)
	}
	return Filter(vips, b.lo, b.hi)
}

// Run sends every SYN, then reads answers until each probe has one or timeout has passed since the
// first was sent; a SYN-ACK is answered at once with a RST through the tunnel, and so is each probe
// left unanswered at the end (a SYN-ACK may have been lost on its way back). It returns the
// results in the order of the probes; an error only if the capture failed.
func (b *Batch) Run(w Wire, timeout time.Duration, now func() time.Time) ([]protocol.ProbeResult, error) {
	if b.Empty() {
		return b.results, nil
	}
	deadline := now().Add(timeout)
	pending := 0
	for _, f := range b.flights {
		f.sent = now()
		if err := w.Send(f.res.RIP, SYNSegment(f.src(), f.dst(), f.id, f.isn).Marshal()); err != nil {
			f.finish(protocol.ProbeNoAnswer, "sending the SYN: "+err.Error())
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
		// Nothing came back, yet the realserver may hold the connection half-open.
		_ = w.Send(f.res.RIP, RSTSegment(f.src(), f.dst(), f.id, f.isn+1).Marshal())
	}
	return b.results, rerr
}

// answer matches a captured packet to the probe it answers, if any, and records what it says;
// it reports whether that settled a probe.
func (b *Batch) answer(w Wire, pkt []byte, at time.Time) bool {
	if s, err := ParseTCP(pkt); err == nil {
		for _, f := range b.flights {
			if f.done || !f.answeredBy(s) {
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
	if e, err := ParseICMP(pkt); err == nil {
		for _, f := range b.flights {
			if !f.done && f.about(e) {
				f.finish(protocol.ProbeNoAnswer, explain(e, f))
				return true
			}
		}
	}
	return false
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

// about tells whether an ICMP error is about the probe's packet: either its IPIP packet to RIP
// (quoting the outer header, then at least the inner header's first 8 bytes, with its ID), or its
// SYN after the realserver unwrapped it (quoting the SYN's header and ports).
func (f *flight) about(e ICMPError) bool {
	q := e.QPayload
	switch e.QProto {
	case protoIPIP:
		if e.QDst != f.res.RIP || len(q) < 8 || q[0]>>4 != 4 || uint16(q[4])<<8|uint16(q[5]) != f.id {
			return false
		}
		if len(q) >= ipv4Len { // the inner addresses and ports, when quoted, must agree too
			hl := int(q[0]&0x0f) * 4
			inner := netip.AddrFrom4([4]byte(q[16:20]))
			if inner != f.res.VIP || len(q) >= hl+4 && (uint16(q[hl])<<8|uint16(q[hl+1]) != f.sport ||
				uint16(q[hl+2])<<8|uint16(q[hl+3]) != f.res.Port) {
				return false
			}
		}
		return true
	case protoTCP:
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
	case e.QProto == protoTCP && e.Type == icmpUnreachable && (e.Code == 3 || e.Code == 9 || e.Code == 10 || e.Code == 13):
		s += ": the realserver unwrapped the SYN and rejected it (a firewall rule?)"
	case e.QProto == protoTCP:
		s += ", about the SYN the realserver unwrapped"
	}
	return s
}
