package probe

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tunplan/tunplan/modules/protocol"
)

// A realserver's behaviour towards a probe's SYN.
type behaviour int

const (
	listens    behaviour = iota // SYN-ACK with its MSS
	closed                      // RST|ACK
	silent                      // nothing comes back (the return path is broken)
	noIPIP                      // ICMP protocol unreachable about the IPIP packet (ipip not loaded)
	firewalled                  // unwraps the SYN, and a firewall rejects it: ICMP admin prohibited
	fromRIP                     // UDP: replies from its own address, not the VIP
)

// fakeNet is the network and the realservers as a probe sees them through its Wire. Every packet
// sent must carry correct checksums (a kernel would drop it otherwise); answers arrive rtt after the
// SYN, and pass the batch's capture filter, run in the BPF VM, before Recv returns them. Time is
// fake: Recv moves it to the next answer, or to the deadline.
type fakeNet struct {
	t       *testing.T
	now     time.Time
	rtt     time.Duration
	rs      map[netip.Addr]behaviour
	mss     map[netip.Addr]uint16
	filter  func([]byte) int
	queue   []arrival
	sent    []sentPkt
	sentUDP []sentDgram
	replies map[netip.Addr][]byte // UDP: what a listening realserver replies; its echo when absent
	sendErr map[netip.Addr]error
	recvErr error
	recvs   int
	closed  bool
	// noise, when set, makes more packets arrive for each SYN (strays the matching must ignore).
	noise func(rip netip.Addr, syn Segment) [][]byte
}

type arrival struct {
	at  time.Time
	pkt []byte
}

type sentPkt struct {
	rip netip.Addr
	seg Segment
}

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func newFakeNet(t *testing.T, rs map[netip.Addr]behaviour) *fakeNet {
	return &fakeNet{t: t, now: t0, rtt: 300 * time.Microsecond, rs: rs, mss: map[netip.Addr]uint16{}}
}

func (f *fakeNet) clock() time.Time { return f.now }

func (f *fakeNet) arrive(after time.Duration, pkt []byte) {
	f.queue = append(f.queue, arrival{f.now.Add(after), pkt})
	slices.SortStableFunc(f.queue, func(a, b arrival) int { return a.at.Compare(b.at) })
}

func (f *fakeNet) Send(rip netip.Addr, payload []byte) error {
	if err := f.sendErr[rip]; err != nil {
		return err
	}
	if len(payload) >= 20 && payload[9] == protoUDP {
		return f.sendUDP(rip, payload)
	}
	if rfc1071(payload[:20]) != 0 || rfc1071(tcpChecksumInput(payload)) != 0 {
		f.t.Errorf("sent to %s with a bad checksum: %x", rip, payload)
	}
	s, err := ParseTCP(payload)
	if err != nil {
		f.t.Fatalf("sent to %s: %v", rip, err)
	}
	f.sent = append(f.sent, sentPkt{rip, s})
	if s.Flags != SYN {
		return nil
	}
	if f.noise != nil {
		for _, p := range f.noise(rip, s) {
			f.arrive(f.rtt/2, p)
		}
	}
	answer := Segment{Src: s.Dst, Dst: s.Src, SrcPort: s.DstPort, DstPort: s.SrcPort, Ack: s.Seq + 1, Window: 65160}
	switch f.rs[rip] {
	case listens:
		answer.Seq, answer.Flags, answer.MSS = 0x5eed0000+uint32(s.SrcPort), SYN|ACK, f.mss[rip]
		f.arrive(f.rtt, answer.Marshal())
	case closed:
		answer.Flags = RST | ACK
		f.arrive(f.rtt, answer.Marshal())
	case noIPIP:
		f.arrive(f.rtt, icmpError(rip, 3, 2, 0, ipip(rip, payload), 28))
	case firewalled:
		f.arrive(f.rtt, icmpError(s.Dst, 3, 13, 0, payload, 200))
	}
	return nil
}

func (f *fakeNet) Recv(deadline time.Time) ([]byte, error) {
	f.recvs++
	if f.recvErr != nil {
		return nil, f.recvErr
	}
	for len(f.queue) > 0 && !f.queue[0].at.After(deadline) {
		a := f.queue[0]
		f.queue = f.queue[1:]
		f.now = a.at
		if f.filter != nil && f.filter(a.pkt) == 0 {
			continue
		}
		return a.pkt, nil
	}
	f.now = deadline
	return nil, fmt.Errorf("read packet: %w", os.ErrDeadlineExceeded)
}

func (f *fakeNet) Close() error { f.closed = true; return nil }

func tcpProbe(port uint16, rip netip.Addr) protocol.Probe {
	return protocol.Probe{Protocol: "tcp", VIP: vip, Port: port, RIP: rip, Source: dip}
}

// run plans probes, runs them on the fake network through the batch's filter, and returns the
// results and the batch.
func run(t *testing.T, n *fakeNet, probes []protocol.Probe, timeout time.Duration) ([]protocol.ProbeResult, *Batch) {
	t.Helper()
	b, err := NewBatch(probes, 32768, 60999, rand.New(rand.NewPCG(7, 8)))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b.Filter()
	if err != nil {
		t.Fatal(err)
	}
	n.filter = vm(t, raw)
	res, err := b.Run(n, timeout, n.clock)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

func TestRun(t *testing.T) {
	rip5 := netip.MustParseAddr("198.18.5.25")
	n := newFakeNet(t, map[netip.Addr]behaviour{rip1: listens, rip2: closed, rip3: silent, rip4: noIPIP, rip5: firewalled})
	n.mss[rip1] = 1400
	probes := []protocol.Probe{
		tcpProbe(80, rip1), tcpProbe(80, rip2),
		{Protocol: "udp", VIP: vip, Port: 53, RIP: rip1, Source: dip},
		tcpProbe(80, rip3), tcpProbe(80, rip4), tcpProbe(443, rip1), tcpProbe(80, rip5),
	}
	res, b := run(t, n, probes, time.Second)

	want := []struct {
		outcome protocol.ProbeOutcome
		rtt     int64
		mss     uint16
		detail  string
	}{
		{protocol.ProbeOK, 300, 1400, ""},
		{protocol.ProbeRefused, 300, 0, ""},
		{protocol.ProbeNotProbed, 0, 0, "the plan gives this UDP service no probe to send"},
		{protocol.ProbeNoAnswer, 0, 0, ""},
		{protocol.ProbeNoAnswer, 0, 0, "ICMP protocol unreachable from 198.18.4.24: the realserver does not take IPIP (is the ipip module loaded?)"},
		{protocol.ProbeOK, 300, 1400, ""},
		{protocol.ProbeNoAnswer, 0, 0, "ICMP communication administratively prohibited from 198.18.10.182: the realserver unwrapped the SYN and rejected it (a firewall rule?)"},
	}
	if len(res) != len(want) {
		t.Fatalf("%d results for %d probes", len(res), len(probes))
	}
	for i, w := range want {
		r := res[i]
		if r.Probe != probes[i] || r.Outcome != w.outcome || r.RTTMicros != w.rtt || r.MSS != w.mss || r.Detail != w.detail {
			t.Errorf("probe %d: got %+v\nwant %+v %+v", i+1, r, probes[i], w)
		}
	}
	// One capture, bounded by the timeout: the silent realserver held it to the deadline.
	if !n.now.Equal(t0.Add(time.Second)) {
		t.Errorf("ended at %v, want the deadline", n.now.Sub(t0))
	}

	// The SYNs went out first, one per TCP probe, in order, each from its own port in the
	// ephemeral range, to VIP:port inside IPIP to its RIP.
	var syns []sentPkt
	for _, s := range n.sent {
		if s.seg.Flags == SYN {
			syns = append(syns, s)
		}
	}
	if len(syns) != 6 || !slices.Equal(n.sent[:6], syns) {
		t.Fatalf("sent %+v, want 6 SYNs first", n.sent)
	}
	ports := map[uint16]bool{}
	for i, s := range syns {
		f := b.flights[i]
		if s.rip != f.res.RIP || s.seg.Src != dip || s.seg.Dst != vip || s.seg.DstPort != f.res.Port || s.seg.SrcPort != f.sport ||
			s.seg.Seq != f.isn || s.seg.Ack != 0 || s.seg.MSS != 1460 || s.seg.ID != f.id {
			t.Errorf("SYN %d: %+v to %s, flight %+v", i+1, s.seg, s.rip, f)
		}
		if s.seg.SrcPort < 32768 || s.seg.SrcPort > 60999 || ports[s.seg.SrcPort] {
			t.Errorf("SYN %d: source port %d reused or out of the range", i+1, s.seg.SrcPort)
		}
		ports[s.seg.SrcPort] = true
	}

	// A RST closed each half-open connection: after each SYN-ACK (seq = its ack), and, at the
	// deadline, for the probe nothing answered (seq = ISN+1). None after a RST or an ICMP error.
	rsts := map[netip.AddrPort]Segment{}
	for _, s := range n.sent[6:] {
		if s.seg.Flags != RST {
			t.Errorf("sent %+v after the SYNs", s.seg)
		}
		if s.seg.Src != dip || s.seg.Dst != vip {
			t.Errorf("RST %+v not from the source to the VIP", s.seg)
		}
		rsts[netip.AddrPortFrom(s.rip, s.seg.DstPort)] = s.seg
	}
	if len(rsts) != 3 || len(n.sent) != 9 {
		t.Errorf("sent %d RSTs to %v, want 3", len(n.sent)-6, rsts)
	}
	for _, i := range []int{0, 2, 4} { // flights: rip1:80, rip3, rip1:443
		f := b.flights[i]
		rst, ok := rsts[netip.AddrPortFrom(f.res.RIP, f.res.Port)]
		if !ok {
			t.Errorf("no RST to %s for %s:%d", f.res.RIP, f.res.VIP, f.res.Port)
			continue
		}
		if rst.SrcPort != f.sport || rst.Seq != f.isn+1 || rst.Ack != 0 || rst.MSS != 0 {
			t.Errorf("RST to %s: %+v, want from port %d with seq %d", f.res.RIP, rst, f.sport, f.isn+1)
		}
	}
	if n.closed {
		t.Errorf("Run closed the wire: its opener does")
	}
}

// With every probe answered, Run returns at once: it does not wait out the timeout.
func TestRunReturnsWhenAllAnswered(t *testing.T) {
	n := newFakeNet(t, map[netip.Addr]behaviour{rip1: listens, rip2: closed})
	res, _ := run(t, n, []protocol.Probe{tcpProbe(80, rip1), tcpProbe(80, rip2)}, 5*time.Second)
	if res[0].Outcome != protocol.ProbeOK || res[1].Outcome != protocol.ProbeRefused {
		t.Errorf("results %+v", res)
	}
	if got := n.now.Sub(t0); got != n.rtt {
		t.Errorf("took %v, want %v", got, n.rtt)
	}
	if n.recvs != 2 {
		t.Errorf("%d reads, want 2", n.recvs)
	}
}

// Packets that look like answers but are not a probe's are ignored: a wrong acknowledgment (an
// old or forged SYN-ACK), another port, another address, a bare ACK, an ICMP error about another
// realserver's packet; the probe's own answer still counts when it comes.
func TestRunIgnoresStrays(t *testing.T) {
	n := newFakeNet(t, map[netip.Addr]behaviour{rip1: listens, rip2: silent})
	other := netip.MustParseAddr("198.18.0.12")
	n.noise = func(rip netip.Addr, syn Segment) [][]byte {
		base := Segment{Src: syn.Dst, Dst: syn.Src, SrcPort: syn.DstPort, DstPort: syn.SrcPort, Seq: 1, Ack: syn.Seq + 1, Flags: SYN | ACK}
		mod := func(f func(*Segment)) []byte { s := base; f(&s); return s.Marshal() }
		return [][]byte{
			mod(func(s *Segment) { s.Ack = syn.Seq }),
			mod(func(s *Segment) { s.Ack = syn.Seq + 2; s.Flags = RST | ACK }),
			mod(func(s *Segment) { s.SrcPort++ }),
			mod(func(s *Segment) { s.DstPort++ }),
			mod(func(s *Segment) { s.Dst = other }),
			mod(func(s *Segment) { s.Flags = ACK }),
			mod(func(s *Segment) { s.Flags = SYN }),
			mod(func(s *Segment) { s.Flags = RST }), // a RST that does not acknowledge the SYN
			icmpError(rip4, 3, 2, 0, ipip(rip4, syn.Marshal()), 28),
			icmpError(rip, 3, 2, 0, ipip(rip, Segment{Src: syn.Src, Dst: syn.Dst, ID: syn.ID + 1}.Marshal()), 28),
			icmpError(syn.Dst, 3, 13, 0, Segment{Src: syn.Src, Dst: syn.Dst, ID: syn.ID, SrcPort: syn.SrcPort, DstPort: syn.DstPort + 1}.Marshal(), 40),
			{0x45, 0, 0},
		}
	}
	res, _ := run(t, n, []protocol.Probe{tcpProbe(80, rip1), tcpProbe(80, rip2)}, time.Second)
	if res[0].Outcome != protocol.ProbeOK || res[0].RTTMicros != 300 || res[0].Detail != "" {
		t.Errorf("the listening realserver: %+v", res[0])
	}
	if res[1].Outcome != protocol.ProbeNoAnswer || res[1].Detail != "" {
		t.Errorf("the silent realserver: %+v", res[1])
	}
}

// A SYN that cannot be sent (no route to the realserver) is that probe's answer; the others run.
func TestRunSendError(t *testing.T) {
	n := newFakeNet(t, map[netip.Addr]behaviour{rip1: listens})
	n.sendErr = map[netip.Addr]error{rip2: errors.New("sendto: network is unreachable")}
	res, _ := run(t, n, []protocol.Probe{tcpProbe(80, rip1), tcpProbe(80, rip2)}, time.Second)
	if res[0].Outcome != protocol.ProbeOK {
		t.Errorf("rip1: %+v", res[0])
	}
	if res[1].Outcome != protocol.ProbeNoAnswer || res[1].Detail != "sending the SYN: sendto: network is unreachable" {
		t.Errorf("rip2: %+v", res[1])
	}
	if n.now.Sub(t0) != n.rtt {
		t.Errorf("waited %v for a probe that was never sent", n.now.Sub(t0))
	}
}

// A capture that fails is the request's error.
func TestRunCaptureError(t *testing.T) {
	n := newFakeNet(t, map[netip.Addr]behaviour{rip1: listens})
	n.recvErr = errors.New("recvfrom: bad file descriptor")
	b, err := NewBatch([]protocol.Probe{tcpProbe(80, rip1)}, 32768, 60999, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Run(n, time.Second, n.clock); err == nil || !strings.Contains(err.Error(), "capture: recvfrom: bad file descriptor") {
		t.Errorf("got %v", err)
	}
}

// Without TCP probes nothing is sent or captured.
func TestRunOnlyUDP(t *testing.T) {
	b, err := NewBatch([]protocol.Probe{{Protocol: "udp", VIP: vip, Port: 53, RIP: rip1, Source: dip}}, 32768, 60999, rand.New(rand.NewPCG(1, 1)))
	if err != nil || !b.Empty() {
		t.Fatalf("%v %v", b, err)
	}
	n := newFakeNet(t, nil)
	res, err := b.Run(n, time.Second, n.clock)
	if err != nil || len(res) != 1 || res[0].Outcome != protocol.ProbeNotProbed || len(n.sent) != 0 || n.recvs != 0 {
		t.Errorf("%+v %v, sent %v", res, err, n.sent)
	}
}

func TestNewBatch(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	bad := []struct {
		p    protocol.Probe
		want string
	}{
		{protocol.Probe{Protocol: "sctp", VIP: vip, Port: 80, RIP: rip1, Source: dip}, `probe 1: unknown protocol "sctp"`},
		{protocol.Probe{Protocol: "tcp", Port: 80, RIP: rip1, Source: dip}, "probe 1: VIP invalid IP is not an IPv4 address"},
		{protocol.Probe{Protocol: "tcp", VIP: vip, Port: 80, RIP: netip.MustParseAddr("2001:db8::1"), Source: dip}, "probe 1: RIP 2001:db8::1 is not an IPv4 address"},
		{protocol.Probe{Protocol: "tcp", VIP: vip, Port: 80, RIP: rip1}, "probe 1: source invalid IP is not an IPv4 address"},
		{protocol.Probe{Protocol: "tcp", VIP: vip, Port: 80, RIP: rip1, Source: netip.IPv4Unspecified()}, "probe 1: source 0.0.0.0 is not an IPv4 address"},
		{protocol.Probe{Protocol: "tcp", VIP: vip, RIP: rip1, Source: dip}, "probe 1: port 0"},
	}
	for _, c := range bad {
		if _, err := NewBatch([]protocol.Probe{c.p}, 32768, 60999, rnd); err == nil || err.Error() != c.want {
			t.Errorf("%+v: got %v, want %q", c.p, err, c.want)
		}
	}
	// Every port of a range just large enough is used once; one probe more does not fit.
	probes := []protocol.Probe{tcpProbe(80, rip1), tcpProbe(80, rip1), tcpProbe(80, rip1), tcpProbe(80, rip1)}
	b, err := NewBatch(probes, 50000, 50003, rnd)
	if err != nil {
		t.Fatal(err)
	}
	ports, ids := map[uint16]bool{}, map[uint16]bool{}
	for _, f := range b.flights {
		ports[f.sport], ids[f.id] = true, true
	}
	if len(ports) != 4 || !ports[50000] || !ports[50003] || len(ids) != 4 || ids[0] || b.lo != 50000 || b.hi != 50003 {
		t.Errorf("ports %v, IDs %v, range %d-%d", ports, ids, b.lo, b.hi)
	}
	if _, err := NewBatch(append(probes, tcpProbe(80, rip1)), 50000, 50003, rnd); err == nil {
		t.Error("5 probes fitted in 4 ports")
	}
	if _, err := NewBatch(probes, 0, 60999, rnd); err == nil {
		t.Error("port 0 accepted as a source port")
	}
}
