package fleet

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tunplan/tunplan/inventory/target"
	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/protocol"
)

// verifyHosts answers probes and explanations from tables, and records every request.
type verifyHosts struct {
	mu       sync.Mutex
	outcome  map[string]protocol.ProbeOutcome // by "udp/RIP", else by RIP; ok when absent
	detail   map[string]string                // by "udp/RIP", else by RIP
	probeErr map[string]string                // by director
	short    bool                             // directors answer one probe result too few
	facts    map[string][]protocol.Fact       // by realserver: what it reads of every path
	reqs     map[string][]protocol.Request
}

type verifySession struct {
	f    *verifyHosts
	name string
}

func (f *verifyHosts) dial(t target.Target) (Session, error) {
	return verifySession{f, t.Name}, nil
}

func (s verifySession) Close() error { return nil }

func (s verifySession) Run(req protocol.Request) (protocol.Response, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if s.f.reqs == nil {
		s.f.reqs = map[string][]protocol.Request{}
	}
	s.f.reqs[s.name] = append(s.f.reqs[s.name], req)
	resp := protocol.Response{Host: s.name}
	switch req.Op {
	case protocol.OpProbe:
		if e := s.f.probeErr[s.name]; e != "" {
			return protocol.Response{Host: s.name, Error: e}, nil
		}
		for _, p := range req.Probes {
			r := protocol.ProbeResult{Probe: p, Outcome: protocol.ProbeOK, RTTMicros: 800, MSS: 1460, PathMTU: 1500}
			key := p.RIP.String()
			if _, ok := s.f.outcome[p.Protocol+"/"+key]; ok {
				key = p.Protocol + "/" + key
			}
			if o, ok := s.f.outcome[key]; ok {
				r = protocol.ProbeResult{Probe: p, Outcome: o, Detail: s.f.detail[key]}
			}
			if p.Protocol == "udp" {
				r.MSS = 0
			}
			resp.Probes = append(resp.Probes, r)
		}
		if s.f.short {
			resp.Probes = resp.Probes[1:]
		}
	case protocol.OpExplain:
		for _, p := range req.Explain {
			resp.Facts = append(resp.Facts, protocol.PathFacts{Path: p, Facts: s.f.facts[s.name]})
		}
	case protocol.OpDiff:
		if s.name != "beijing" {
			resp.Changes = []change.Change{add}
		}
	case protocol.OpApply, protocol.OpRollback:
		resp.Outcome, resp.Generation = protocol.Applied, 1
	}
	return resp, nil
}

var (
	vip     = netip.MustParseAddr("198.18.48.180")
	dirAddr = netip.MustParseAddr("198.18.48.181")
	rip1    = netip.MustParseAddr("198.18.1.183")
	rip2    = netip.MustParseAddr("198.18.10.182")
	ripGone = netip.MustParseAddr("198.18.10.99")
)

// verifyFleet is the two-region plan with a second, UDP, service on rs1 and a destination no host of
// the run has.
func verifyFleet() []Host {
	dest := func(a netip.Addr, port uint16) protocol.Destination {
		return protocol.Destination{Address: a, Port: port, Weight: 1, Forward: protocol.ForwardTunnel}
	}
	return []Host{
		{Target: target.Target{Name: "lvs01"}, Roles: protocol.Roles{protocol.Director}, Address: dirAddr, Desired: protocol.State{Services: []protocol.Service{
			{Protocol: "tcp", Address: vip, Port: 80, Scheduler: "rr", Destinations: []protocol.Destination{dest(rip1, 80), dest(ripGone, 80), dest(rip2, 80)}},
			{Protocol: "udp", Address: vip, Port: 53, Scheduler: "rr", Destinations: []protocol.Destination{dest(rip1, 53)}},
		}}},
		{Target: target.Target{Name: "shanghai"}, Roles: protocol.Roles{protocol.Realserver}, Address: rip1},
		{Target: target.Target{Name: "beijing"}, Roles: protocol.Roles{protocol.Realserver}, Address: rip2},
	}
}

var nginxOnRIP = []protocol.Fact{
	{Name: "ipip loaded", Value: "loaded", OK: true},
	{Name: "listening on VIP:port", Value: "nginx listens on 198.18.10.182:80 only", Cause: "nothing listens on 198.18.48.180:80 (nginx listens on 198.18.10.182:80 only)"},
	{Name: "route to the director", Value: "blackhole", Cause: "the route back to the director (198.18.48.181) is a blackhole route: the replies are dropped"},
}

func summary(cs []Check) string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Director+" "+c.Service.String()+" "+c.Result.RIP.String()+" "+c.Realserver+" "+string(c.Result.Outcome)+" | "+c.Cause)
	}
	return strings.Join(out, "\n")
}

// TestVerifyProbesAndExplainsFailures: the director probes its TCP destinations from its data
// address, in order; only the realserver of a failed destination (and of the UDP one, which is
// not probed) is asked why, about exactly that path; a failure's cause is its first failing fact.
func TestVerifyProbesAndExplainsFailures(t *testing.T) {
	f := &verifyHosts{
		outcome: map[string]protocol.ProbeOutcome{rip2.String(): protocol.ProbeRefused, ripGone.String(): protocol.ProbeNoAnswer},
		facts:   map[string][]protocol.Fact{"beijing": nginxOnRIP, "shanghai": {{Name: "ipip loaded", Value: "loaded", OK: true}}},
	}
	r := Open(verifyFleet(), f.dial, Options{Parallel: 3})
	defer r.Close()
	checks := r.Verify(VerifyOptions{Timeout: 1500 * time.Millisecond})
	want := strings.Join([]string{
		"lvs01 tcp/198.18.48.180:80 198.18.1.183 shanghai ok | ",
		"lvs01 tcp/198.18.48.180:80 198.18.10.99  no answer | 198.18.10.99 is not one of the selected hosts, so it was not asked why",
		"lvs01 tcp/198.18.48.180:80 198.18.10.182 beijing refused | nothing listens on 198.18.48.180:80 (nginx listens on 198.18.10.182:80 only)",
		"lvs01 udp/198.18.48.180:53 198.18.1.183 shanghai not probed | ",
	}, "\n")
	if got := summary(checks); got != want {
		t.Errorf("checks:\n%s\nwant:\n%s", got, want)
	}
	if len(r.Failed()) != 0 {
		t.Errorf("failed hosts %v", r.Failed())
	}
	probe := f.reqs["lvs01"]
	if len(probe) != 1 || probe[0].Op != protocol.OpProbe || probe[0].TimeoutMS != 1500 || len(probe[0].Probes) != 3 {
		t.Fatalf("director's requests %+v", probe)
	}
	for i, rip := range []netip.Addr{rip1, ripGone, rip2} {
		if p := probe[0].Probes[i]; p != (protocol.Probe{Protocol: "tcp", VIP: vip, Port: 80, RIP: rip, Source: dirAddr}) {
			t.Errorf("probe %d: %+v", i, p)
		}
	}
	if b := f.reqs["beijing"]; len(b) != 1 || b[0].Op != protocol.OpExplain || !slices.Equal(b[0].Explain, []protocol.Path{{Protocol: "tcp", VIP: vip, Port: 80, Director: dirAddr}}) {
		t.Errorf("beijing's requests %+v", b)
	}
	if s := f.reqs["shanghai"]; len(s) != 1 || !slices.Equal(s[0].Explain, []protocol.Path{{Protocol: "udp", VIP: vip, Port: 53, Director: dirAddr}}) {
		t.Errorf("shanghai was asked %+v, want only about the UDP path", s)
	}
	if c := checks[2]; len(c.Facts) != 3 || c.Result.Outcome != protocol.ProbeRefused || !c.Failed() {
		t.Errorf("beijing's check %+v", c)
	}
	if c := checks[0]; c.Result.MSS != 1460 || c.Result.RTTMicros != 800 || c.Result.PathMTU != 1500 || c.Failed() || c.Facts != nil {
		t.Errorf("shanghai's check %+v", c)
	}
	for _, h := range r.Hosts {
		if _, ok := h.Result(Probe); ok != (h.Name() == "lvs01") {
			t.Errorf("%s took part in the probe phase: %v", h.Name(), ok)
		}
	}
}

// TestVerifyExplainAll asks every realserver about every path to it, and keeps its facts on the
// checks that passed without a cause.
func TestVerifyExplainAll(t *testing.T) {
	f := &verifyHosts{facts: map[string][]protocol.Fact{"beijing": {{Name: "ipip loaded", Value: "loaded", OK: true}}, "shanghai": {{Name: "ipip loaded", Value: "loaded", OK: true}}}}
	r := Open(verifyFleet(), f.dial, Options{Parallel: 1})
	checks := r.Verify(VerifyOptions{Explain: true})
	if len(f.reqs["shanghai"]) != 1 || len(f.reqs["shanghai"][0].Explain) != 2 || len(f.reqs["beijing"]) != 1 {
		t.Errorf("explain requests: shanghai %+v, beijing %+v", f.reqs["shanghai"], f.reqs["beijing"])
	}
	for _, c := range checks {
		if c.Failed() || c.Cause != "" || (c.Realserver != "" && len(c.Facts) != 1) {
			t.Errorf("%+v", c)
		}
	}
	if probe := f.reqs["lvs01"][0]; probe.TimeoutMS != 0 {
		t.Errorf("timeout %d ms, want the helper's default (0)", probe.TimeoutMS)
	}
}

// TestVerifyDirectorFailures: a director that cannot probe, or answers for other probes than it
// was sent, is a failed host with no checks, and nobody is asked why.
func TestVerifyDirectorFailures(t *testing.T) {
	for name, f := range map[string]*verifyHosts{
		"helper error": {probeErr: map[string]string{"lvs01": "probe: raw socket: operation not permitted"}},
		"short answer": {short: true},
	} {
		t.Run(name, func(t *testing.T) {
			r := Open(verifyFleet(), f.dial, Options{Parallel: 3})
			checks := r.Verify(VerifyOptions{})
			failed := r.Failed()
			if len(checks) != 0 || len(failed) != 1 || failed[0].Name() != "lvs01" {
				t.Fatalf("checks %v, failed %v", summary(checks), failed)
			}
			if err := failed[0].Err().Error(); !strings.Contains(err, "host lvs01: ") {
				t.Errorf("error %q", err)
			}
			if len(f.reqs["beijing"])+len(f.reqs["shanghai"]) != 0 {
				t.Errorf("realservers asked: %v", f.reqs)
			}
		})
	}
}

// TestVerifyUnreachableRealserver: the cause of a failure whose realserver cannot be asked says so.
func TestVerifyUnreachableRealserver(t *testing.T) {
	f := &verifyHosts{outcome: map[string]protocol.ProbeOutcome{rip2.String(): protocol.ProbeNoAnswer}}
	dial := func(t target.Target) (Session, error) {
		if t.Name == "beijing" {
			return nil, errors.New("host beijing: connect 198.19.0.22:22: connection refused")
		}
		return f.dial(t)
	}
	r := Open(verifyFleet(), dial, Options{Parallel: 3})
	checks := r.Verify(VerifyOptions{})
	if c := checks[2]; c.Realserver != "beijing" || c.Cause != "could not ask beijing why: host beijing: connect 198.19.0.22:22: connection refused" {
		t.Errorf("%+v", c)
	}
}

// TestUndoAfterVerify: after a verify that failed, Undo rolls back every host the run changed,
// also a director whose probe failed, and none it did not change.
func TestUndoAfterVerify(t *testing.T) {
	f := &verifyHosts{probeErr: map[string]string{"lvs01": "probe: raw socket: operation not permitted"}}
	r := Open(verifyFleet(), f.dial, Options{Parallel: 3})
	r.Diff(true)
	if !r.Apply(true) {
		t.Fatalf("apply failed: %v", r.Failed())
	}
	r.Verify(VerifyOptions{})
	if !r.Undo() {
		t.Fatal("undo failed")
	}
	for _, h := range r.Hosts {
		_, undone := h.Result(Undo)
		if want := h.Name() != "beijing"; undone != want { // beijing had nothing to change
			t.Errorf("%s: undone %v, want %v (phases %s)", h.Name(), undone, want, phases(h))
		}
	}
}

// TestVerifyUDPProbes: a UDP service with a probe in the plan is probed like a TCP one, its payload
// in each probe, in the order of the destinations; a refused one is explained by its realserver, a
// wrong reply is not (the path works: the cause is what was wrong with the reply); a UDP service
// without a probe stays not probed, and a TCP probe never carries a payload.
func TestVerifyUDPProbes(t *testing.T) {
	hosts := verifyFleet()
	dns := protocol.Key{Protocol: "udp", Address: vip, Port: 53}
	dest := func(a netip.Addr, port uint16) protocol.Destination {
		return protocol.Destination{Address: a, Port: port, Weight: 1, Forward: protocol.ForwardTunnel}
	}
	st := &hosts[0].Desired
	st.Services[1].Destinations = []protocol.Destination{dest(rip1, 53), dest(ripGone, 53), dest(rip2, 53)}
	st.Services = append(st.Services, protocol.Service{Protocol: "udp", Address: vip, Port: 514, Scheduler: "rr", Destinations: []protocol.Destination{dest(rip2, 514)}})
	payload := protocol.Payload{Send: "\x74\x70\x01\x00", Expect: "\x74\x70"}
	hosts[0].UDPProbes = map[protocol.Key]protocol.Payload{dns: payload, {Protocol: "tcp", Address: vip, Port: 80}: {Send: "x"}}
	wrong := "reply does not start with the expected bytes: got 0000, 2 bytes"
	f := &verifyHosts{
		outcome: map[string]protocol.ProbeOutcome{"udp/" + rip1.String(): protocol.ProbeWrongReply, "udp/" + rip2.String(): protocol.ProbeRefused},
		detail:  map[string]string{"udp/" + rip1.String(): wrong, "udp/" + rip2.String(): "ICMP port unreachable from " + vip.String()},
		facts: map[string][]protocol.Fact{"beijing": {{Name: "listening on VIP:port", Value: "nothing",
			Cause: "nothing listens on 198.18.48.180:53 (nor on any other address on port 53)"}}},
	}
	r := Open(hosts, f.dial, Options{Parallel: 3})
	defer r.Close()
	checks := r.Verify(VerifyOptions{})
	want := strings.Join([]string{
		"lvs01 tcp/198.18.48.180:80 198.18.1.183 shanghai ok | ",
		"lvs01 tcp/198.18.48.180:80 198.18.10.99  ok | ",
		"lvs01 tcp/198.18.48.180:80 198.18.10.182 beijing ok | ",
		"lvs01 udp/198.18.48.180:53 198.18.1.183 shanghai wrong reply | " + wrong,
		"lvs01 udp/198.18.48.180:53 198.18.10.99  ok | ",
		"lvs01 udp/198.18.48.180:53 198.18.10.182 beijing refused | nothing listens on 198.18.48.180:53 (nor on any other address on port 53)",
		"lvs01 udp/198.18.48.180:514 198.18.10.182 beijing not probed | nothing listens on 198.18.48.180:53 (nor on any other address on port 53)",
	}, "\n")
	if got := summary(checks); got != want {
		t.Errorf("checks:\n%s\nwant:\n%s", got, want)
	}
	probe := f.reqs["lvs01"]
	if len(probe) != 1 || len(probe[0].Probes) != 6 {
		t.Fatalf("director's requests %+v", probe)
	}
	for i, p := range probe[0].Probes {
		want := protocol.Probe{Protocol: "tcp", VIP: vip, Port: 80, RIP: []netip.Addr{rip1, ripGone, rip2}[i%3], Source: dirAddr}
		if i >= 3 {
			want.Protocol, want.Port, want.Payload = "udp", 53, payload
		}
		if p != want {
			t.Errorf("probe %d: %+v, want %+v", i+1, p, want)
		}
	}
	if c := checks[3]; !c.Failed() || c.Facts != nil || c.Result.Send != payload.Send {
		t.Errorf("the wrong reply: %+v", c)
	}
	// Beijing is asked about its refused UDP path and the one not probed; shanghai, whose reply was
	// wrong, is not asked.
	if b := f.reqs["beijing"]; len(b) != 1 || !slices.Equal(b[0].Explain, []protocol.Path{
		{Protocol: "udp", VIP: vip, Port: 53, Director: dirAddr}, {Protocol: "udp", VIP: vip, Port: 514, Director: dirAddr}}) {
		t.Errorf("beijing's requests %+v", b)
	}
	if s := f.reqs["shanghai"]; len(s) != 0 {
		t.Errorf("shanghai was asked %+v", s)
	}

	// With --explain, the realserver of a wrong reply tells its facts too; the cause stays the reply's.
	f.reqs = nil
	checks = Open(hosts, f.dial, Options{Parallel: 3}).Verify(VerifyOptions{Explain: true})
	if len(f.reqs["shanghai"]) != 1 || checks[3].Cause != wrong {
		t.Errorf("explain all: shanghai asked %+v, check %+v", f.reqs["shanghai"], checks[3])
	}
}

// TestVerifyLeavesGUEAndGREOut: verify sends IPIP only, so a GUE or GRE destination is not probed,
// its realserver is not asked (its facts are IPIP's), even with explain, and its cause says why.
func TestVerifyLeavesGUEAndGREOut(t *testing.T) {
	hosts := verifyFleet()
	svcs := hosts[0].Desired.Services
	for i, tun := range []protocol.Tunnel{{Type: protocol.TunnelGUE, Port: 6080}, {Type: protocol.TunnelGRE, Checksum: true}} {
		s := protocol.Service{Protocol: "tcp", Address: netip.AddrFrom4([4]byte{198, 18, 48, byte(190 + i)}), Port: 80, Scheduler: "rr",
			Destinations: []protocol.Destination{{Address: rip2, Port: 80, Weight: 1, Forward: protocol.ForwardTunnel, Tunnel: tun}}}
		svcs = append(svcs, s)
	}
	hosts[0].Desired.Services = svcs
	f := &verifyHosts{facts: map[string][]protocol.Fact{"beijing": {{Name: "ipip loaded", Value: "loaded", OK: true}}, "shanghai": {{Name: "ipip loaded", Value: "loaded", OK: true}}}}
	r := Open(hosts, f.dial, Options{Parallel: 3})
	defer r.Close()
	checks := r.Verify(VerifyOptions{Explain: true})
	got := summary(checks)
	for _, want := range []string{
		"lvs01 tcp/198.18.48.190:80 198.18.10.182 beijing not probed | tunnelled by gue:6080: verify sends its probes in IPIP only",
		"lvs01 tcp/198.18.48.191:80 198.18.10.182 beijing not probed | tunnelled by gre,csum: verify sends its probes in IPIP only",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("checks:\n%s\nlack %q", got, want)
		}
	}
	if n := len(f.reqs["lvs01"][0].Probes); n != 3 {
		t.Errorf("%d probes, want the 3 TCP IPIP ones", n)
	}
	for _, p := range f.reqs["beijing"][0].Explain {
		if p.VIP != vip {
			t.Errorf("beijing asked about %+v", p)
		}
	}
	for _, c := range checks[len(checks)-2:] {
		if c.Failed() || c.Facts != nil {
			t.Errorf("%+v", c)
		}
	}
}

// TestVerifyFWMarkAndIPv6: a firewall-mark service is probed at each VIP and port its mark rules
// cover, to each destination; an IPv6 service is not probed, with the reason, and its realservers
// are not asked.
func TestVerifyFWMarkAndIPv6(t *testing.T) {
	vip6 := netip.MustParseAddr("2001:2:0:48::180")
	rip6 := netip.MustParseAddr("2001:2:0:1::183")
	mark := func(port uint16) protocol.Mark {
		return protocol.Mark{Protocol: "tcp", Address: vip, Port: port, Mark: 1}
	}
	hosts := []Host{
		{Target: target.Target{Name: "lvs01"}, Roles: protocol.Roles{protocol.Director}, Address: dirAddr, Desired: protocol.State{
			Services: []protocol.Service{
				{Address: netip.IPv4Unspecified(), FWMark: 1, Scheduler: "rr", Destinations: []protocol.Destination{{Address: rip1, Weight: 1, Forward: protocol.ForwardTunnel}}},
				{Protocol: "tcp", Address: vip6, Port: 80, Scheduler: "rr", Destinations: []protocol.Destination{{Address: rip6, Port: 80, Weight: 1, Forward: protocol.ForwardTunnel}}},
			},
			Marks: []protocol.Mark{mark(80), mark(443), {Protocol: "tcp", Address: vip, Port: 8080, Mark: 2}},
		}},
		{Target: target.Target{Name: "shanghai"}, Roles: protocol.Roles{protocol.Realserver}, Address: rip1},
	}
	f := &verifyHosts{}
	r := Open(hosts, f.dial, Options{Parallel: 2})
	defer r.Close()
	checks := r.Verify(VerifyOptions{})
	want := strings.Join([]string{
		"lvs01 tcp/198.18.48.180:80 198.18.1.183 shanghai ok | ",
		"lvs01 tcp/198.18.48.180:443 198.18.1.183 shanghai ok | ",
		"lvs01 tcp/[2001:2:0:48::180]:80 2001:2:0:1::183  not probed | an IPv6 service: verify sends its probes in IPIP, over IPv4, only",
	}, "\n")
	if got := summary(checks); got != want {
		t.Errorf("checks:\n%s\nwant:\n%s", got, want)
	}
	if p := f.reqs["lvs01"]; len(p) != 1 || len(p[0].Probes) != 2 || p[0].Probes[1] != (protocol.Probe{Protocol: "tcp", VIP: vip, Port: 443, RIP: rip1, Source: dirAddr}) {
		t.Errorf("director's requests %+v", p)
	}
	if len(f.reqs["shanghai"]) != 0 {
		t.Errorf("shanghai was asked %+v", f.reqs["shanghai"])
	}
}
