package health

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	cipvs "github.com/cloudflare/ipvs"

	"github.com/tunplan/tunplan/modules/ipvs"
	"github.com/tunplan/tunplan/modules/protocol"
)

func TestTrackerFallsAndRises(t *testing.T) {
	d := protocol.CheckedDestination{Weight: 5}
	tr := newTracker(d, 3, 2, time.Unix(0, 0))
	bad := errors.New("connect: connection refused")
	steps := []struct {
		err     error
		changed bool
		healthy bool
	}{
		{bad, false, true}, {bad, false, true}, {nil, false, true}, // a success breaks the run of failures
		{bad, false, true}, {bad, false, true}, {bad, true, false}, // the third in a row takes it out
		{bad, false, false}, {nil, false, false}, {bad, false, false}, // one success is not rise = 2
		{nil, false, false}, {nil, true, true},
	}
	for i, s := range steps {
		if changed := tr.observe(s.err, time.Millisecond, time.Unix(int64(i), 0)); changed != s.changed || tr.healthy != s.healthy {
			t.Fatalf("result %d: changed %v healthy %v, want %v %v", i, changed, tr.healthy, s.changed, s.healthy)
		}
	}
	if tr.checks != 11 || tr.failures != 7 || tr.since != time.Unix(10, 0) || tr.last != "ok (1ms)" {
		t.Errorf("tracker %+v", tr)
	}
}

func TestWeightsFailOpen(t *testing.T) {
	up := &tracker{dest: protocol.CheckedDestination{Weight: 3}, healthy: true}
	down := &tracker{dest: protocol.CheckedDestination{Weight: 2}}
	down2 := &tracker{dest: protocol.CheckedDestination{Weight: 4}}
	if w, open := weights([]*tracker{up, down}); open || w[0] != 3 || w[1] != 0 {
		t.Errorf("one down: %v %v", w, open)
	}
	if w, open := weights([]*tracker{down, down2}); !open || w[0] != 2 || w[1] != 4 {
		t.Errorf("all down: %v %v, want plan weights, fail open", w, open)
	}
}

// fakeIPVS is a table of services, written through the ipvs.Kernel boundary.
type fakeIPVS struct {
	mu    sync.Mutex
	svcs  []cipvs.Service
	dests [][]cipvs.Destination // dests[i] are svcs[i]'s
}

// newFakeIPVS is a table of svcs with their destinations.
func newFakeIPVS(svcs ...protocol.Service) *fakeIPVS {
	f := &fakeIPVS{}
	for _, s := range svcs {
		f.svcs = append(f.svcs, ipvs.ToKernel(s))
		var ds []cipvs.Destination
		for _, d := range s.Destinations {
			ds = append(ds, ipvs.DestToKernel(d))
		}
		f.dests = append(f.dests, ds)
	}
	return f
}

// at is the index of service s.
func (f *fakeIPVS) at(s cipvs.Service) int {
	return slices.IndexFunc(f.svcs, func(x cipvs.Service) bool {
		return x.Address == s.Address && x.Port == s.Port && x.Protocol == s.Protocol && x.FWMark == s.FWMark
	})
}

func (f *fakeIPVS) Services() ([]cipvs.Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.svcs), nil
}

func (f *fakeIPVS) Destinations(svcs []cipvs.Service, _ bool) ([][]cipvs.Destination, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([][]cipvs.Destination, len(svcs))
	for i, s := range svcs {
		out[i] = slices.Clone(f.dests[f.at(s)])
	}
	return out, nil
}

// Counters reads the table with every counter 0.
func (f *fakeIPVS) Counters(svcs []cipvs.Service) ([][]cipvs.DestinationExtended, error) {
	ds, _ := f.Destinations(svcs, true)
	out := make([][]cipvs.DestinationExtended, len(ds))
	for i := range ds {
		for _, d := range ds[i] {
			out[i] = append(out[i], cipvs.DestinationExtended{Destination: d})
		}
	}
	return out, nil
}

func (f *fakeIPVS) Queue(w ipvs.Write) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.at(w.Service)
	i := slices.IndexFunc(f.dests[s], func(d cipvs.Destination) bool { return d.Address == w.Dest.Address && d.Port == w.Dest.Port })
	switch {
	case w.Cmd == ipvs.SetDest && i >= 0:
		f.dests[s][i].Weight = w.Dest.Weight
	case w.Cmd == ipvs.NewDest && i < 0:
		f.dests[s] = append(f.dests[s], w.Dest)
	case w.Cmd == ipvs.DelDest && i >= 0:
		f.dests[s] = slices.Delete(f.dests[s], i, i+1)
	default:
		return fmt.Errorf("the watcher changes only destinations that are there (or adds one that is not): %v", w.Name)
	}
	return nil
}

func (f *fakeIPVS) Flush() error { return nil }

// setWeight changes the first service's destination i's weight, as by hand.
func (f *fakeIPVS) setWeight(i int, w uint32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dests[0][i].Weight = w
}

// weights are the first service's destinations' weights.
func (f *fakeIPVS) weights() []uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var w []uint32
	for _, d := range f.dests[0] {
		w = append(w, d.Weight)
	}
	return w
}

// The watcher takes a failing destination to weight 0 and back, keeps it at 0 whatever sets it
// otherwise, leaves a healthy one's weight changed by hand alone, keeps every weight when all fail
// (fail open), reports it all in its status file, and follows a changed configuration.
func TestWatcher(t *testing.T) {
	vip, rip1, rip2 := netip.MustParseAddr("198.18.48.180"), netip.MustParseAddr("198.18.1.183"), netip.MustParseAddr("198.18.10.182")
	svc := protocol.Service{Protocol: "tcp", Address: vip, Port: 80, Scheduler: "rr", Destinations: []protocol.Destination{
		{Address: rip1, Port: 80, Weight: 1, Forward: "tunnel"}, {Address: rip2, Port: 80, Weight: 3, Forward: "tunnel"}}}
	k := newFakeIPVS(svc)
	check := protocol.HealthCheck{Service: svc.Key(), Type: protocol.CheckTCP, Port: 80, VIP: vip, IntervalMS: 5, TimeoutMS: 2, Fall: 2, Rise: 2,
		Destinations: []protocol.CheckedDestination{{Address: rip1, Port: 80, Weight: 1, Mark: protocol.ProbeMarkBase}, {Address: rip2, Port: 80, Weight: 3, Mark: protocol.ProbeMarkBase + 1}}}
	dir := t.TempDir()
	cfg, status := filepath.Join(dir, "watch.json"), filepath.Join(dir, "run", "health.json")
	metrics := filepath.Join(dir, "textfile", "tunplan.prom")
	writeSpec := func(c protocol.HealthCheck) {
		b, _ := json.Marshal(protocol.WatchSpec{Checks: []protocol.HealthCheck{c}, Metrics: metrics})
		if err := os.WriteFile(cfg, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeSpec(check)
	var mu sync.Mutex
	failing := map[netip.Addr]bool{}
	set := func(a netip.Addr, f bool) { mu.Lock(); failing[a] = f; mu.Unlock() }
	var log bytes.Buffer
	var logMu sync.Mutex
	drains := filepath.Join(dir, "drains.json")
	w := &Watcher{Config: cfg, Status: status, Drains: drains, IPVS: func() (ipvs.Kernel, error) { return k, nil }, Log: lockedWriter{&logMu, &log}, Every: 20 * time.Millisecond, MetricsEvery: 20 * time.Millisecond,
		Check: func(_ context.Context, _ protocol.HealthCheck, d protocol.CheckedDestination) error {
			mu.Lock()
			defer mu.Unlock()
			if failing[d.Address] {
				return errors.New("connect: connection refused")
			}
			return nil
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
			if cond() {
				return
			}
		}
		logMu.Lock()
		defer logMu.Unlock()
		t.Fatalf("%s: weights %v\n%s", what, k.weights(), log.String())
	}
	same := func(want ...uint32) func() bool {
		return func() bool { got := k.weights(); return got[0] == want[0] && got[1] == want[1] }
	}
	health := func() protocol.Health {
		var h protocol.Health
		b, _ := os.ReadFile(status)
		_ = json.Unmarshal(b, &h)
		return h
	}

	set(rip2, true)
	waitFor("rs2 quiesced", same(1, 0))
	waitFor("status says so", func() bool {
		h := health()
		return len(h.Services) == 1 && h.Services[0].Destinations[1].Quiesced && !h.Services[0].Destinations[0].Quiesced && time.Since(h.Heartbeat) < 2*time.Second
	})
	// The metrics file waits for its directory, then says so too.
	if err := os.Mkdir(filepath.Dir(metrics), 0o755); err != nil {
		t.Fatal(err)
	}
	waitFor("the metrics say rs2 is quiesced at weight 0", func() bool {
		b, _ := os.ReadFile(metrics)
		return strings.Contains(string(b), `tunplan_destination_quiesced{service="tcp/198.18.48.180:80",destination="198.18.10.182:80"} 1`) &&
			strings.Contains(string(b), `tunplan_destination_weight{service="tcp/198.18.48.180:80",destination="198.18.10.182:80"} 0`)
	})
	// By hand: rs1 (healthy) to 7 stays, as drift for apply to fix; rs2 (held) is set to 0 again.
	k.setWeight(0, 7)
	k.setWeight(1, 3)
	waitFor("rs2 held again", same(7, 0))
	time.Sleep(100 * time.Millisecond)
	waitFor("rs1 left as set by hand", same(7, 0))
	set(rip1, true)
	waitFor("fail open", same(1, 3))
	waitFor("status says fail open", func() bool { h := health(); return len(h.Services) == 1 && h.Services[0].FailOpen })
	set(rip1, false)
	waitFor("rs1 healthy, rs2 out again", same(1, 0))
	set(rip2, false)
	waitFor("rs2 back", same(1, 3))

	// A new configuration: rs2's plan weight is 5 now.
	check.Destinations[1].Weight = 5
	writeSpec(check)
	waitFor("new plan weight", same(1, 5))

	// An operator drains rs1: it stays at 0 through rs2's fall and rise, and through a drains file
	// that cannot be read.
	b, _ := json.Marshal(protocol.Drains{Drains: []protocol.Drain{{Service: svc.Key(), Address: rip1, Port: 80}}})
	if err := os.WriteFile(drains, b, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor("rs1 drained", same(0, 5))
	if err := os.WriteFile(drains, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	set(rip2, true)
	waitFor("rs2 out, rs1 still drained", same(0, 0))
	set(rip2, false)
	waitFor("rs2 back, rs1 still drained", same(0, 5))
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	logMu.Lock()
	defer logMu.Unlock()
	for _, line := range []string{
		"tunplan-watch: tcp/198.18.48.180:80 -> 198.18.10.182:80: failing after 2 checks in a row: connect: connection refused",
		"tunplan-watch: ~ ipvs tcp/198.18.48.180:80 -> 198.18.10.182:80  weight=3 fwd=tunnel => weight=0 fwd=tunnel",
		"every destination fails its check: all keep their plan weight (fail open)",
		"tunplan-watch: tcp/198.18.48.180:80 -> 198.18.10.182:80: healthy after 2 checks in a row: ok",
		"drains.json cannot be read (unexpected end of JSON input): the drains read before stay",
		"textfile: no such file or directory: no Prometheus text file is written until it exists",
	} {
		if !strings.Contains(log.String(), line) {
			t.Errorf("the log lacks %q:\n%s", line, log.String())
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// udpServer answers each datagram to the address it returns with "PONG " and the datagram, but
// "quiet" with nothing, until the test ends.
func udpServer(t *testing.T) netip.AddrPort {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		b := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(b)
			if err != nil {
				return
			}
			if string(b[:n]) != "quiet" {
				_, _ = pc.WriteTo(append([]byte("PONG "), b[:n]...), from)
			}
		}
	}()
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

// TestUDPCheck runs udp checks against a local server, as the watcher runs them but with mark 0 and
// from 127.0.0.1 to 127.0.0.1, without a tunnel.
func TestUDPCheck(t *testing.T) {
	server := udpServer(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := netip.MustParseAddrPort(pc.LocalAddr().String()).Port() // nothing listens there: an ICMP port unreachable answers
	pc.Close()
	lo := netip.MustParseAddr("127.0.0.1")
	cases := []struct {
		name         string
		port         uint16
		send, expect string
		timeoutMS    int
		want         string // "": the check passes
	}{
		{"pass", server.Port(), "ping", "PONG ping", 1000, ""},
		{"any reply", server.Port(), "ping", "", 1000, ""},
		{"wrong reply", server.Port(), "ping\x00", "PANG", 1000, `reply "PONG ping\x00" does not start with "PANG"`},
		{"no reply", server.Port(), "quiet", "", 50, "no reply within 50ms"},
		{"refused", closed, "ping", "", 1000, "connection refused"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hc := protocol.HealthCheck{Type: protocol.CheckUDP, Port: c.port, Source: lo, VIP: lo, TimeoutMS: c.timeoutMS,
				Payload: protocol.Payload{Send: protocol.Bytes(c.send), Expect: protocol.Bytes(c.expect)}}
			err := Check(context.Background(), hc, protocol.CheckedDestination{Address: lo, Port: c.port})
			if errors.Is(err, syscall.EPERM) {
				t.Skip("setting SO_MARK needs CAP_NET_ADMIN")
			}
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != c.want {
				t.Errorf("%q, want %q", got, c.want)
			}
		})
	}
}

// The text file holds every family with its help and type, a sample per destination (the kernel's
// counters only where the kernel has the destination), and label values quoted.
func TestRenderMetrics(t *testing.T) {
	key := protocol.Key{Protocol: "tcp", Address: netip.MustParseAddr("2001:2::80"), Port: 443}
	a, b := netip.MustParseAddr("2001:2::1"), netip.MustParseAddr("2001:2::2")
	h := protocol.Health{Heartbeat: time.Unix(1764766931, 0), Services: []protocol.ServiceHealth{{Service: key, Destinations: []protocol.DestinationHealth{
		{Address: a, Port: 443, Healthy: true, Checks: 10}, {Address: b, Port: 443, Quiesced: true, Checks: 10, Failures: 4}}}}}
	checks := []protocol.HealthCheck{{Service: key, Destinations: []protocol.CheckedDestination{{Address: a, Port: 443, Weight: 3}, {Address: b, Port: 443, Weight: 1}}}}
	st := []protocol.ServiceStatus{{Service: key, Destinations: []protocol.DestinationStatus{
		{Address: a, Port: 443, Weight: 3, Counters: protocol.Counters{ActiveConns: 2, InactiveConns: 5, Conns: 70, InPackets: 900, InBytes: 81000}}}}}
	got := string(renderMetrics(h, checks, st, map[drainKey]bool{{key, "[2001:2::2]:443"}: true}))
	for _, want := range []string{
		"# HELP tunplan_watcher_heartbeat_timestamp_seconds When the watcher last wrote its report.\n# TYPE tunplan_watcher_heartbeat_timestamp_seconds gauge\ntunplan_watcher_heartbeat_timestamp_seconds 1764766931\n",
		"tunplan_service_fail_open{service=\"tcp/[2001:2::80]:443\"} 0\n",
		"# TYPE tunplan_destination_in_bytes_total counter\ntunplan_destination_in_bytes_total{service=\"tcp/[2001:2::80]:443\",destination=\"[2001:2::1]:443\"} 81000\n",
		"tunplan_destination_drained{service=\"tcp/[2001:2::80]:443\",destination=\"[2001:2::1]:443\"} 0\ntunplan_destination_drained{service=\"tcp/[2001:2::80]:443\",destination=\"[2001:2::2]:443\"} 1\n",
		"tunplan_destination_plan_weight{service=\"tcp/[2001:2::80]:443\",destination=\"[2001:2::2]:443\"} 1\n",
		"tunplan_destination_check_failures_total{service=\"tcp/[2001:2::80]:443\",destination=\"[2001:2::2]:443\"} 4\n",
		"# TYPE tunplan_destination_active_connections gauge\ntunplan_destination_active_connections{service=\"tcp/[2001:2::80]:443\",destination=\"[2001:2::1]:443\"} 2\n# HELP",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the text file lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "# TYPE "); n != len(families)+2 {
		t.Errorf("%d families, want %d", n, len(families)+2)
	}
	if label("a\"b\\c\nd") != `"a\"b\\c\nd"` {
		t.Errorf("label %s", label("a\"b\\c\nd"))
	}
}

// With on_failure = "remove", a failing destination leaves the service and comes back, with its
// plan weight and the service's tunnel, once it passes; a drained one stays in at weight 0.
func TestWatcherRemoves(t *testing.T) {
	vip, rip1, rip2 := netip.MustParseAddr("198.18.48.180"), netip.MustParseAddr("198.18.1.183"), netip.MustParseAddr("198.18.10.182")
	gue := protocol.Tunnel{Type: protocol.TunnelGUE, Port: 6080}
	svc := protocol.Service{Protocol: "tcp", Address: vip, Port: 80, Scheduler: "rr", Destinations: []protocol.Destination{
		{Address: rip1, Port: 80, Weight: 1, Forward: "tunnel", Tunnel: gue}, {Address: rip2, Port: 80, Weight: 3, Forward: "tunnel", Tunnel: gue}}}
	k := newFakeIPVS(svc)
	check := protocol.HealthCheck{Service: svc.Key(), Type: protocol.CheckTCP, Port: 80, VIP: vip, IntervalMS: 5, TimeoutMS: 2, Fall: 2, Rise: 2, OnFailure: protocol.Remove,
		Destinations: []protocol.CheckedDestination{{Address: rip1, Port: 80, Weight: 1, Tunnel: gue}, {Address: rip2, Port: 80, Weight: 3, Tunnel: gue}}}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "watch.json")
	b, _ := json.Marshal(protocol.WatchSpec{Checks: []protocol.HealthCheck{check}})
	if err := os.WriteFile(cfg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var failing atomic.Bool
	w := &Watcher{Config: cfg, Status: filepath.Join(dir, "health.json"), Drains: filepath.Join(dir, "drains.json"), IPVS: func() (ipvs.Kernel, error) { return k, nil },
		Log: io.Discard, Every: 20 * time.Millisecond, MetricsEvery: time.Hour,
		Check: func(_ context.Context, _ protocol.HealthCheck, d protocol.CheckedDestination) error {
			if d.Address == rip2 && failing.Load() {
				return errors.New("connect: connection refused")
			}
			return nil
		}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	table := func() string {
		k.mu.Lock()
		defer k.mu.Unlock()
		var s []string
		for _, d := range k.dests[0] {
			s = append(s, fmt.Sprintf("%s w%d %v:%d", d.Address, d.Weight, d.TunnelType, d.TunnelPort))
		}
		return strings.Join(s, ", ")
	}
	waitFor := func(what, want string) {
		t.Helper()
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
			if table() == want {
				return
			}
		}
		t.Fatalf("%s: %s, want %s", what, table(), want)
	}
	both := "198.18.1.183 w1 GUE:6080, 198.18.10.182 w3 GUE:6080"
	waitFor("start", both)
	failing.Store(true)
	waitFor("rs2 removed", "198.18.1.183 w1 GUE:6080")
	failing.Store(false)
	waitFor("rs2 back", both)
	d, _ := json.Marshal(protocol.Drains{Drains: []protocol.Drain{{Service: svc.Key(), Address: rip2, Port: 80}}})
	if err := os.WriteFile(w.Drains, d, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor("rs2 drained", "198.18.1.183 w1 GUE:6080, 198.18.10.182 w0 GUE:6080")
	failing.Store(true)
	time.Sleep(100 * time.Millisecond)
	waitFor("rs2 failing and drained: in, at 0", "198.18.1.183 w1 GUE:6080, 198.18.10.182 w0 GUE:6080")
}
