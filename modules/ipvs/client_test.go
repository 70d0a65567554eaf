package ipvs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	cipvs "github.com/cloudflare/ipvs"
	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/protocol"
)

const fakeFamily = 0x24

// fakeKernel answers generic netlink as the kernel does: the requests of one datagram are handled
// in order, a failure is answered with an error carrying the request's header, success only with
// an acknowledgement when NLM_F_ACK is set; dumps answer with their messages, then NLMSG_DONE.
type fakeKernel struct {
	mu      sync.Mutex
	svcs    map[string]map[string]cipvs.Destination // service → destination → destination
	order   []string
	info    map[string]cipvs.Service
	sends   [][]message // every datagram sent, decoded
	enobufs bool        // the next receive fails with ENOBUFS and the answers are lost
	dials   int
	counts  map[string]protocol.Counters // a destination's counters ("198.18.200.1:80"), in every service
}

func newFakeKernel() *fakeKernel {
	return &fakeKernel{svcs: map[string]map[string]cipvs.Destination{}, info: map[string]cipvs.Service{}}
}

type fakeConn struct {
	k       *fakeKernel
	answers [][]byte
}

func (k *fakeKernel) dial() (conn, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dials++
	return &fakeConn{k: k}, nil
}

func (c *fakeConn) Close() error { return nil }

func (c *fakeConn) Recv(buf []byte, block bool) (int, error) {
	c.k.mu.Lock()
	defer c.k.mu.Unlock()
	if c.k.enobufs {
		c.k.enobufs = false
		c.answers = nil
		return 0, syscall.ENOBUFS
	}
	if len(c.answers) == 0 {
		if block {
			return 0, errors.New("fake: a receive would block for ever")
		}
		return 0, syscall.EAGAIN
	}
	n := copy(buf, c.answers[0])
	c.answers = c.answers[1:]
	return n, nil
}

func ackMsg(m message, code syscall.Errno) []byte {
	b := make([]byte, nlmsgHdrLen+4+nlmsgHdrLen)
	binary.NativeEndian.PutUint32(b, uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:], nlmsgError)
	binary.NativeEndian.PutUint32(b[8:], m.seq)
	binary.NativeEndian.PutUint32(b[16:], uint32(-int32(code)))
	binary.NativeEndian.PutUint32(b[20:], uint32(nlmsgHdrLen+len(m.data)))
	binary.NativeEndian.PutUint16(b[24:], m.typ)
	binary.NativeEndian.PutUint16(b[26:], m.flags)
	binary.NativeEndian.PutUint32(b[28:], m.seq)
	return b
}

func (c *fakeConn) Send(b []byte) error {
	k := c.k
	k.mu.Lock()
	defer k.mu.Unlock()
	ms, err := parseMessages(b)
	if err != nil {
		return err
	}
	k.sends = append(k.sends, ms)
	var out []byte
	for _, m := range ms {
		if m.typ == genlIDCtrl {
			out = appendMsg(out, genlIDCtrl, 0, m.seq, 1, func(b []byte) []byte { return putU16(b, ctrlAttrFamID, fakeFamily) })
			continue
		}
		if m.flags&flagDump == flagDump {
			c.answers = append(c.answers, k.dump(m))
			continue
		}
		if err := k.apply(m); err != 0 {
			out = append(out, ackMsg(m, err)...)
		} else if m.flags&flagAck != 0 {
			out = append(out, ackMsg(m, 0)...)
		}
	}
	if len(out) > 0 {
		c.answers = append(c.answers, out)
	}
	return nil
}

func (k *fakeKernel) dump(m message) []byte {
	var out []byte
	add := func(cmd Cmd, attrs func([]byte) []byte) {
		out = appendMsg(out, fakeFamily, flagMulti, m.seq, uint8(cmd), attrs)
	}
	switch Cmd(m.data[0]) {
	case getService:
		for _, key := range k.order {
			s := k.info[key]
			s.Flags |= cipvs.ServiceHashed
			add(NewService, func(b []byte) []byte {
				return nest(b, cmdAttrService, func(b []byte) []byte { return appendService(b, s) })
			})
		}
	case getDest:
		s, _ := decodeService(m.data[genlHdrLen:])
		for dk, d := range k.svcs[svcName(s)] {
			add(NewDest, func(b []byte) []byte {
				return nest(b, cmdAttrDest, func(b []byte) []byte { return appendCounters(appendDest(b, d), k.counts[dk]) })
			})
		}
	}
	done := make([]byte, nlmsgHdrLen+4)
	binary.NativeEndian.PutUint32(done, uint32(len(done)))
	binary.NativeEndian.PutUint16(done[4:], nlmsgDone)
	binary.NativeEndian.PutUint16(done[6:], flagMulti)
	binary.NativeEndian.PutUint32(done[8:], m.seq)
	return append(out, done...)
}

// appendCounters appends a destination's counters as the kernel sends them in a dump: the
// connections now, then the totals (IPVS_DEST_ATTR_STATS64; TestDecodeDestCounters reads the rest).
func appendCounters(b []byte, c protocol.Counters) []byte {
	b = putU32(b, destAttrActiveConns, c.ActiveConns)
	b = putU32(b, destAttrInactConns, c.InactiveConns)
	return nest(b, destAttrStats64, func(b []byte) []byte {
		for i, v := range []uint64{c.Conns, c.InPackets, c.OutPackets, c.InBytes, c.OutBytes} {
			b = putAttr(b, uint16(statsAttrConns+i), ne64(v)...)
		}
		return b
	})
}

func (k *fakeKernel) apply(m message) syscall.Errno {
	s, err := decodeService(m.data[genlHdrLen:])
	if err != nil {
		return syscall.EINVAL
	}
	key := svcName(s)
	dests, exists := k.svcs[key]
	var d cipvs.Destination
	cmd := Cmd(m.data[0])
	if cmd.isDest() {
		if !exists {
			return syscall.ESRCH
		}
		if d, err = decodeDest(m.data[genlHdrLen:], s.Family); err != nil {
			return syscall.EINVAL
		}
	}
	dk := netip.AddrPortFrom(d.Address, d.Port).String()
	_, destExists := dests[dk]
	switch cmd {
	case NewService:
		if exists {
			return syscall.EEXIST
		}
		k.svcs[key], k.info[key] = map[string]cipvs.Destination{}, s
		k.order = append(k.order, key)
	case SetService, DelService:
		if !exists {
			return syscall.ESRCH
		}
		if cmd == SetService {
			k.info[key] = s
		} else {
			delete(k.svcs, key)
			delete(k.info, key)
			for i, o := range k.order {
				if o == key {
					k.order = append(k.order[:i], k.order[i+1:]...)
					break
				}
			}
		}
	case NewDest:
		if destExists {
			return syscall.EEXIST
		}
		dests[dk] = d
	case SetDest, DelDest:
		if !destExists {
			return syscall.ENOENT
		}
		if cmd == SetDest {
			dests[dk] = d
		} else {
			delete(dests, dk)
		}
	}
	return 0
}

func testClient(t *testing.T) (*Client, *fakeKernel) {
	k := newFakeKernel()
	cl, err := open(k.dial)
	if err != nil {
		t.Fatal(err)
	}
	if cl.family != fakeFamily {
		t.Fatalf("family %#x", cl.family)
	}
	cl.proc = "" // the fake kernel has no /proc/net/ip_vs; TestProc gives it one
	k.sends = nil
	return cl, k
}

func benchService(i int) cipvs.Service {
	return toKernel(protocol.Service{Protocol: "tcp", Address: netip.AddrFrom4([4]byte{198, 18, 100, byte(i / 100)}), Port: uint16(10000 + i%100), Scheduler: "rr"})
}

func benchDest(j int) cipvs.Destination {
	return destToKernel(protocol.Destination{Address: netip.AddrFrom4([4]byte{198, 18, 200, byte(1 + j)}), Port: 80, Weight: 1, Forward: "tunnel"})
}

// run runs steps, then flushes cl: what the engine does with a module's steps.
func run(t *testing.T, cl *Client, steps []change.Step) {
	t.Helper()
	for _, s := range steps {
		if err := s.Do(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.Flush(); err != nil {
		t.Fatal(err)
	}
}

// load queues n services with 10 destinations each.
func load(t *testing.T, cl *Client, n int) error {
	for i := 0; i < n; i++ {
		if err := cl.Queue(Write{Cmd: NewService, Service: benchService(i), Name: fmt.Sprintf("create svc %d", i)}); err != nil {
			return err
		}
		for j := 0; j < 10; j++ {
			if err := cl.Queue(Write{Cmd: NewDest, Service: benchService(i), Dest: benchDest(j), Name: fmt.Sprintf("create svc %d dest %d", i, j)}); err != nil {
				return err
			}
		}
	}
	return nil
}

func TestBatches(t *testing.T) {
	cl, k := testClient(t)
	if err := load(t, cl, 250); err != nil { // 2,750 writes
		t.Fatal(err)
	}
	if len(k.sends) != 2 {
		t.Fatalf("%d datagrams sent before Flush, want 2 full batches", len(k.sends))
	}
	if err := cl.Flush(); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	seq := uint32(0)
	for _, ms := range k.sends {
		sizes = append(sizes, len(ms))
		for i, m := range ms {
			if seq != 0 && m.seq != seq+1 {
				t.Errorf("sequence %d after %d", m.seq, seq)
			}
			seq = m.seq
			if ack := m.flags&flagAck != 0; ack != (i == len(ms)-1) {
				t.Errorf("request %d of %d: NLM_F_ACK %v", i+1, len(ms), ack)
			}
		}
	}
	if fmt.Sprint(sizes) != "[1000 1000 750]" {
		t.Errorf("batches of %v requests", sizes)
	}
	if len(k.svcs) != 250 || len(k.svcs[svcName(benchService(249))]) != 10 {
		t.Errorf("the fake has %d services", len(k.svcs))
	}
	if err := cl.Flush(); err != nil || len(k.sends) != 3 {
		t.Errorf("an empty Flush: %v, %d sends", err, len(k.sends))
	}
}

func TestBatchErrors(t *testing.T) {
	tests := []struct {
		name    string
		writes  func(cl *Client) error // before Flush
		wantErr string
		svcs    int // services left in the fake
	}{
		{"duplicate in the middle of a batch", func(cl *Client) error {
			for i := 0; i < 100; i++ {
				cl.Queue(Write{Cmd: NewService, Service: benchService(i), Name: fmt.Sprintf("create %d", i)})
				if i == 50 {
					cl.Queue(Write{Cmd: NewService, Service: benchService(7), Name: "create the duplicate"})
				}
			}
			return nil
		}, "ipvs: create the duplicate: file exists", 100},
		{"two failures: the first is reported", func(cl *Client) error {
			cl.Queue(Write{Cmd: NewService, Service: benchService(1), Name: "create 1"})
			cl.Queue(Write{Cmd: NewDest, Service: benchService(2), Dest: benchDest(0), Name: "create dest of a missing service"})
			cl.Queue(Write{Cmd: DelDest, Service: benchService(1), Dest: benchDest(0), Name: "delete a missing dest"})
			return nil
		}, "ipvs: create dest of a missing service: no such process", 1},
		{"the last request fails", func(cl *Client) error {
			cl.Queue(Write{Cmd: NewService, Service: benchService(1), Name: "create 1"})
			cl.Queue(Write{Cmd: SetService, Service: benchService(2), Name: "update 2"})
			return nil
		}, "ipvs: update 2: no such process", 1},
		{"a failure in a full batch is reported by Queue", func(cl *Client) error {
			cl.Queue(Write{Cmd: DelService, Service: benchService(9999), Name: "delete a missing service"})
			err := load(nil, cl, 100)
			if err == nil {
				return errors.New("Queue reported nothing")
			}
			return cl.Queue(Write{Cmd: NewService, Service: benchService(9999), Name: "a later write"})
		}, "ipvs: delete a missing service: no such process", 92}, // 1 + 90×11 = 991 < 1000 ≤ 1 + 91×11, and the later write
		{"lost answers", func(cl *Client) error {
			cl.Queue(Write{Cmd: NewService, Service: benchService(1), Name: "create 1"})
			cl.Queue(Write{Cmd: NewService, Service: benchService(2), Name: "create 2"})
			k := cl.c.(*fakeConn).k
			k.enobufs = true
			return nil
		}, "answers were lost", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cl, k := testClient(t)
			if err := tc.writes(cl); err != nil {
				t.Fatalf("before Flush: %v", err)
			}
			err := cl.Flush()
			if strings.HasPrefix(tc.name, "a failure in a full batch") {
				// Queue reported the failure; Flush only sends what was queued after it.
				if err != nil {
					t.Errorf("Flush after the reported failure: %v", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Flush: %v, want %q", err, tc.wantErr)
			}
			if len(k.svcs) != tc.svcs {
				t.Errorf("%d services in the fake, want %d", len(k.svcs), tc.svcs)
			}
			// The client is clean after a failure: the engine restores through it.
			if err := cl.Queue(Write{Cmd: NewService, Service: benchService(5000), Name: "after"}); err != nil {
				t.Fatal(err)
			}
			if err := cl.Flush(); err != nil {
				t.Errorf("the next Flush: %v", err)
			}
		})
	}
}

func TestFailureInFullBatchNamesWrite(t *testing.T) {
	cl, _ := testClient(t)
	cl.Queue(Write{Cmd: DelService, Service: benchService(9999), Name: "delete a missing service"})
	err := load(t, cl, 100)
	if err == nil || err.Error() != "ipvs: delete a missing service: no such process" {
		t.Errorf("Queue: %v", err)
	}
}

func TestReads(t *testing.T) {
	cl, k := testClient(t)
	if svcs, err := cl.Services(); err != nil || len(svcs) != 0 {
		t.Fatalf("empty table: %v %v", svcs, err)
	}
	if err := load(t, cl, 300); err != nil {
		t.Fatal(err)
	}
	cl.Queue(Write{Cmd: DelDest, Service: benchService(4), Dest: benchDest(3), Name: "delete"})
	if err := cl.Flush(); err != nil {
		t.Fatal(err)
	}
	svcs, err := cl.Services()
	if err != nil || len(svcs) != 300 {
		t.Fatalf("%d services, %v", len(svcs), err)
	}
	for i, s := range svcs {
		want := benchService(i)
		want.Flags |= cipvs.ServiceHashed
		if s != want {
			t.Fatalf("service %d: %+v, want %+v", i, s, want)
		}
	}
	dests, err := cl.Destinations(svcs, false)
	if err != nil {
		t.Fatal(err)
	}
	if k.dials != readers {
		t.Errorf("%d sockets, want %d", k.dials, readers)
	}
	for i, ds := range dests {
		want := 10
		if i == 4 {
			want = 9
		}
		if len(ds) != want {
			t.Fatalf("service %d: %d destinations", i, len(ds))
		}
		sort.Slice(ds, func(a, b int) bool { return ds[a].Address.Less(ds[b].Address) })
		if ds[0] != benchDest(0) {
			t.Errorf("service %d: %+v", i, ds[0])
		}
	}
	// A service that went away in between has no destinations.
	gone, err := cl.Destinations([]cipvs.Service{benchService(999)}, false)
	if err != nil || len(gone) != 1 || len(gone[0]) != 0 {
		t.Errorf("%v %v", gone, err)
	}
}

// TestFacts reads through the client into tunplan's types.
func TestFacts(t *testing.T) {
	cl, _ := testClient(t)
	if err := load(t, cl, 3); err != nil {
		t.Fatal(err)
	}
	if err := cl.Flush(); err != nil {
		t.Fatal(err)
	}
	s1 := benchService(1)
	got, err := Facts(cl, map[protocol.Key]bool{{Protocol: "tcp", Address: s1.Address, Port: s1.Port}: true}, false)
	if err != nil || len(got) != 1 || len(got[0].Destinations) != 10 {
		t.Fatalf("%+v %v", got, err)
	}
	if d := got[0].Destinations[9]; d.Address != netip.MustParseAddr("198.18.200.10") || d.Forward != "tunnel" || d.Weight != 1 {
		t.Errorf("%+v", d)
	}
	all, err := Facts(cl, nil, false)
	if err != nil || len(all) != 3 {
		t.Errorf("%d services, %v", len(all), err)
	}
}

// TestDiffSteps: Diff's steps queue their writes and flush them, and a failure names its object.
func TestDiffSteps(t *testing.T) {
	cl, k := testClient(t)
	open := func() (Kernel, error) { return cl, nil }
	want := []protocol.Service{{Protocol: "tcp", Address: vip, Port: 80, Scheduler: "rr", Destinations: []protocol.Destination{{Address: rip, Port: 80, Weight: 1, Forward: "tunnel"}}}}
	steps := Diff(open, want, nil)
	for _, s := range steps {
		if s.Flush == nil {
			t.Fatalf("step %s without Flush", s.Address)
		}
		if err := s.Do(); err != nil {
			t.Fatal(err)
		}
	}
	if len(k.sends) != 0 {
		t.Errorf("Do sent before Flush")
	}
	if err := steps[0].Flush(); err != nil {
		t.Fatal(err)
	}
	// Applying the same steps again fails on the first, which is named.
	for _, s := range steps {
		s.Do()
	}
	err := steps[0].Flush()
	if err == nil || err.Error() != "ipvs: create tcp/198.18.48.180:80: file exists" {
		t.Errorf("%v", err)
	}
}
