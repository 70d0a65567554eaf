package host

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tunplan/tunplan/modules/protocol"
)

// fakeProber answers each probe by its RIP, as the probe package would, and records its calls.
type fakeProber struct {
	calls   int
	timeout time.Duration
	err     error
	// mangle, when set, changes the answer before it is returned (a broken boundary).
	mangle func([]protocol.ProbeResult) []protocol.ProbeResult
}

func (f *fakeProber) probe(probes []protocol.Probe, timeout time.Duration) ([]protocol.ProbeResult, error) {
	f.calls++
	f.timeout = timeout
	if f.err != nil {
		return nil, f.err
	}
	out := make([]protocol.ProbeResult, len(probes))
	for i, p := range probes {
		out[i] = protocol.ProbeResult{Probe: p, Outcome: protocol.ProbeNoAnswer}
		if p.RIP == rip1 {
			out[i].Outcome, out[i].RTTMicros, out[i].MSS, out[i].PathMTU = protocol.ProbeOK, 420, 1460, 1500
		}
	}
	if f.mangle != nil {
		out = f.mangle(out)
	}
	return out, nil
}

var dip = vip.Prev() // any address of the director's

func probeReq(timeoutMS int64, probes ...protocol.Probe) protocol.Request {
	return protocol.Request{Op: protocol.OpProbe, Host: "lvs01", Probes: probes, TimeoutMS: timeoutMS}
}

// OpProbe answers each probe in order, through the boundary, and changes nothing on the host: no
// kernel write, no lock, no state directory.
func TestProbe(t *testing.T) {
	f := newFake()
	e := newEngine(t, f)
	p := &fakeProber{}
	e.Probe = p.probe
	probes := []protocol.Probe{
		{Protocol: "tcp", VIP: vip, Port: 80, RIP: rip2, Source: dip},
		{Protocol: "tcp", VIP: vip, Port: 80, RIP: rip1, Source: dip},
		{Protocol: "tcp", VIP: vip, Port: 443, RIP: rip1}, // the boundary picks the source
	}
	resp := e.Handle(probeReq(0, probes...))
	if resp.Error != "" || len(resp.Probes) != 3 {
		t.Fatalf("%+v", resp)
	}
	for i, r := range resp.Probes {
		if r.Probe != probes[i] {
			t.Errorf("result %d is for %+v, want %+v", i+1, r.Probe, probes[i])
		}
	}
	if resp.Probes[0].Outcome != protocol.ProbeNoAnswer || resp.Probes[1].Outcome != protocol.ProbeOK || resp.Probes[1].MSS != 1460 || resp.Probes[1].PathMTU != 1500 {
		t.Errorf("results %+v", resp.Probes)
	}
	if p.calls != 1 || p.timeout != time.Second {
		t.Errorf("%d calls, timeout %v; want one, with the default 1s", p.calls, p.timeout)
	}
	if f.calls != 0 {
		t.Errorf("%d kernel writes", f.calls)
	}
	if _, err := os.Stat(e.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the state directory was touched: %v", err)
	}
	if resp.Changes == nil || len(resp.Changes) != 0 || resp.Outcome != protocol.OutcomeNone {
		t.Errorf("a probe reported changes: %+v", resp)
	}

	if resp := e.Handle(probeReq(250, probes[0])); resp.Error != "" || p.timeout != 250*time.Millisecond {
		t.Errorf("timeout_ms 250: %v, %+v", p.timeout, resp)
	}
	// Nothing to probe: an empty answer, and the boundary is not called.
	if resp := e.Handle(probeReq(0)); resp.Error != "" || resp.Probes == nil || len(resp.Probes) != 0 || p.calls != 2 {
		t.Errorf("no probes: %+v, %d calls", resp, p.calls)
	}
}

func TestProbeErrors(t *testing.T) {
	one := protocol.Probe{Protocol: "tcp", VIP: vip, Port: 80, RIP: rip1, Source: dip}
	cases := []struct {
		name   string
		req    protocol.Request
		prober *fakeProber
		want   string
	}{
		{"no prober", probeReq(0, one), nil, "probe: this helper cannot send probes"},
		{"negative timeout", probeReq(-1, one), &fakeProber{}, "probe: negative timeout -1 ms"},
		{"timeout too long", probeReq(30001, one), &fakeProber{}, "probe: timeout 30001 ms is more than the 30s a probe may wait"},
		{"the boundary fails", probeReq(0, one), &fakeProber{err: errors.New("packet socket: operation not permitted")}, "probe: packet socket: operation not permitted"},
		{"a result missing", probeReq(0, one, one), &fakeProber{mangle: func(r []protocol.ProbeResult) []protocol.ProbeResult { return r[:1] }}, "probe: 1 results for 2 probes"},
		{"results out of order", probeReq(0, one, protocol.Probe{Protocol: "tcp", VIP: vip, Port: 81, RIP: rip2, Source: dip}),
			&fakeProber{mangle: func(r []protocol.ProbeResult) []protocol.ProbeResult { return []protocol.ProbeResult{r[1], r[0]} }},
			"probe: result 1 is for 198.18.48.180:81 via 198.18.10.182, not 198.18.48.180:80 via 198.18.1.183"},
		{"another source", probeReq(0, one), &fakeProber{mangle: func(r []protocol.ProbeResult) []protocol.ProbeResult { r[0].Source = vip; return r }},
			"probe: result 1 is for"},
	}
	for _, c := range cases {
		e := newEngine(t, newFake())
		if c.prober != nil {
			e.Probe = c.prober.probe
		}
		resp := e.Handle(c.req)
		if !strings.HasPrefix(resp.Error, c.want) || resp.Probes != nil {
			t.Errorf("%s: got %q, %+v; want %q", c.name, resp.Error, resp.Probes, c.want)
		}
		if c.prober != nil && strings.Contains(c.want, "timeout") && c.prober.calls != 0 {
			t.Errorf("%s: the boundary was called", c.name)
		}
	}
}
