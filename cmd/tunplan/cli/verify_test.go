package cli

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/tunplan/tunplan/inventory/fleet"
	"github.com/tunplan/tunplan/inventory/target"
	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/protocol"
)

// verifyHosts stands in for the SSH transport in verify's tests: the director answers each probe
// from a table by RIP (ok with an RTT, the MSS and the path MTU when the RIP is not in it), each
// realserver explains every path with its facts; diff and apply answer as a host with changes.
type verifyHosts struct {
	mu       sync.Mutex
	outcomes map[string]protocol.ProbeResult
	facts    map[string][]protocol.Fact
	probeErr string
	unreach  map[string]bool
	changes  map[string][]change.Change
	calls    []string
}

func (f *verifyHosts) connect(t target.Target) (fleet.Session, error) {
	if f.unreach[t.Name] {
		return nil, errors.New("host " + t.Name + ": connect " + t.Address + ":22: connection refused")
	}
	return verifySession{f, t.Name}, nil
}

type verifySession struct {
	f    *verifyHosts
	name string
}

func (s verifySession) Close() error { return nil }

func (s verifySession) Run(req protocol.Request) (protocol.Response, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.calls = append(s.f.calls, strings.TrimSpace(s.name+" "+string(req.Op)+" "+string(req.Phase)))
	resp := protocol.Response{Host: s.name}
	switch req.Op {
	case protocol.OpProbe:
		if s.f.probeErr != "" {
			return protocol.Response{Host: s.name, Error: s.f.probeErr}, nil
		}
		for _, p := range req.Probes {
			r, ok := s.f.outcomes[p.RIP.String()]
			if !ok {
				r = protocol.ProbeResult{Outcome: protocol.ProbeOK, RTTMicros: 812, MSS: 1400, PathMTU: 1500}
			}
			r.Probe = p
			resp.Probes = append(resp.Probes, r)
		}
	case protocol.OpExplain:
		for _, p := range req.Explain {
			resp.Facts = append(resp.Facts, protocol.PathFacts{Path: p, Facts: s.f.facts[s.name]})
		}
	case protocol.OpDiff:
		resp.Changes = s.f.changes[s.name]
	case protocol.OpApply:
		resp.Changes, resp.Outcome, resp.Generation = byPhase(s.f.changes[s.name], req.Phase), protocol.Applied, 2
		if len(resp.Changes) == 0 {
			resp.Outcome, resp.Changes = protocol.Unchanged, nil
		}
	case protocol.OpRollback:
		resp.Outcome, resp.Generation = protocol.Applied, 3
	}
	return resp, nil
}

// healthyFacts is what a realserver tunplan set up reads.
func healthyFacts(rip string) []protocol.Fact {
	return []protocol.Fact{
		{Name: "ipip loaded", Value: "loaded", OK: true},
		{Name: "tunl0 up", Value: "up", OK: true},
		{Name: "VIP on tunl0", Value: "198.18.48.180/32", OK: true},
		{Name: "rp_filter for tunl0", Value: "0 (net.ipv4.conf.all.rp_filter=0, net.ipv4.conf.tunl0.rp_filter=0)", OK: true},
		{Name: "listening on VIP:port", Value: "nginx listens on 0.0.0.0:80", OK: true},
		{Name: "route to the director", Value: "via 198.18.10.254 dev eth0 src " + rip, OK: true},
		{Name: "arp", Value: "arp_ignore=1, arp_announce=2 (net.ipv4.conf.all): the VIP is kept out of ARP", OK: true},
	}
}

// brokenBeijing: beijing's nginx listens on its RIP only, so the director's probe is refused.
func brokenBeijing() *verifyHosts {
	facts := healthyFacts("198.18.10.182")
	facts[4] = protocol.Fact{Name: "listening on VIP:port", Value: "nginx listens on 198.18.10.182:80 only",
		Cause: "nothing listens on 198.18.48.180:80 (nginx listens on 198.18.10.182:80 only)"}
	return &verifyHosts{
		outcomes: map[string]protocol.ProbeResult{"198.18.10.182": {Outcome: protocol.ProbeRefused, RTTMicros: 431}},
		facts:    map[string][]protocol.Fact{"beijing": facts, "shanghai": healthyFacts("198.18.1.183")},
	}
}

func runVerify(t *testing.T, f *verifyHosts, args ...string) (string, string, int) {
	t.Helper()
	return runOn(t, f.connect, example, args...)
}

func TestVerifyHealthy(t *testing.T) {
	f := &verifyHosts{}
	out, errOut, code := runVerify(t, f, "verify")
	if code != exitOK || errOut != "" {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	golden(t, "verify_ok.txt", out)
	for _, c := range f.calls {
		if c != "lvs01 probe" {
			t.Errorf("a healthy verify sent %q: only the director probes, nobody is asked why", c)
		}
	}
}

func TestVerifyFailure(t *testing.T) {
	f := brokenBeijing()
	out, errOut, code := runVerify(t, f, "verify", "--timeout", "2s")
	if code != exitDrift || errOut != "" {
		t.Errorf("exit %d, want 2; stderr %q", code, errOut)
	}
	golden(t, "verify_failed.txt", out)
	if strings.Join(f.calls, ",") != "lvs01 probe,beijing explain" {
		t.Errorf("calls %v: the director probes, then only beijing is asked why", f.calls)
	}
}

func TestVerifyExplainShowsEveryFact(t *testing.T) {
	f := brokenBeijing()
	out, _, code := runVerify(t, f, "verify", "--explain")
	if code != exitDrift {
		t.Errorf("exit %d", code)
	}
	for _, want := range []string{
		"  beijing (198.18.10.182) reads:\n    ok    ipip loaded            loaded\n",
		"    FAIL  listening on VIP:port  nginx listens on 198.18.10.182:80 only\n",
		"  shanghai (198.18.1.183) reads:\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestVerifyJSON(t *testing.T) {
	out, _, code := runVerify(t, brokenBeijing(), "verify", "--json")
	if code != exitDrift {
		t.Errorf("exit %d", code)
	}
	var doc struct {
		Status   string
		Services []struct {
			Service, Director string
			Destinations      []struct {
				Realserver, RIP, Outcome, Cause string
				MTUWarning                      string `json:"mtu_warning"`
				MSS                             int
			}
		}
		Summary struct{ Probed, Failed int }
		Errors  []any
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if doc.Status != "failed" || len(doc.Services) != 1 || doc.Services[0].Service != "tcp/198.18.48.180:80" || doc.Services[0].Director != "lvs01" ||
		len(doc.Services[0].Destinations) != 2 || doc.Summary.Probed != 2 || doc.Summary.Failed != 1 || len(doc.Errors) != 0 {
		t.Fatalf("document:\n%s", out)
	}
	d := doc.Services[0].Destinations
	if d[1].Realserver != "beijing" || d[1].Outcome != "refused" || d[1].Cause != "nothing listens on 198.18.48.180:80 (nginx listens on 198.18.10.182:80 only)" ||
		d[0].Realserver != "shanghai" || d[0].Outcome != "ok" || d[0].MSS != 1400 || d[0].MTUWarning != "" {
		t.Errorf("destinations %+v", d)
	}
}

func TestVerifyErrors(t *testing.T) {
	f := &verifyHosts{probeErr: "probe: raw socket: operation not permitted"}
	out, errOut, code := runVerify(t, f, "verify")
	if code != exitError || !strings.Contains(errOut, "Error: host lvs01: probe: raw socket: operation not permitted") || !strings.Contains(out, "1 host could not be verified.") {
		t.Errorf("exit %d\n%s\n%s", code, out, errOut)
	}
	f = brokenBeijing()
	f.unreach = map[string]bool{"beijing": true}
	out, errOut, code = runVerify(t, f, "verify")
	if code != exitError || !strings.Contains(errOut, "Error: host beijing: connect 198.19.0.22:22: connection refused") ||
		!strings.Contains(out, "could not ask beijing why: host beijing: connect 198.19.0.22:22: connection refused") {
		t.Errorf("exit %d\n%s\n%s", code, out, errOut)
	}
	if _, errOut, code := runVerify(t, &verifyHosts{}, "verify", "--timeout", "0s"); code != exitError || !strings.Contains(errOut, "--timeout 0s: want a positive duration") {
		t.Errorf("--timeout 0: exit %d, %s", code, errOut)
	}
}

// TestVerifyMTUWarning: an MSS that, with the TCP/IP headers and IPIP, is more than the path MTU
// is a warning that says the MSS it would take; it does not fail the verify.
func TestVerifyMTUWarning(t *testing.T) {
	f := &verifyHosts{outcomes: map[string]protocol.ProbeResult{"198.18.1.183": {Outcome: protocol.ProbeOK, RTTMicros: 1500, MSS: 1460, PathMTU: 1500}}}
	out, _, code := runVerify(t, f, "verify")
	want := `  ! shanghai (198.18.1.183): warning: MSS 1460 + 40 (TCP/IP) + 20 (IPIP) = 1520 bytes, more than the path MTU 1500 from lvs01: ` +
		`full-size client segments will need fragmentation (or an ICMP "fragmentation needed", which many networks block); set tunnel_mss = 1440 on shanghai`
	if code != exitOK || !strings.Contains(out, want+"\n") || strings.Count(out, "warning") != 1 {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

func verifyChanges() map[string][]change.Change {
	return map[string][]change.Change{
		"lvs01":   {{Module: "ipvs", Address: "ipvs tcp/198.18.48.180:80 -> 198.18.10.182:80", Action: change.Create, After: "weight=1 fwd=tunnel"}},
		"beijing": {{Module: "tunnel", Address: "tunnel tunl0 198.18.48.180/32", Action: change.Create, After: "present"}},
	}
}

// TestApplyVerifyAtomicRollsBack: apply --verify --atomic converges, verifies, and on a failed
// verify rolls back the hosts it changed (not the one it did not), and says so.
func TestApplyVerifyAtomicRollsBack(t *testing.T) {
	f := brokenBeijing()
	f.changes = verifyChanges()
	out, errOut, code := runVerify(t, f, "apply", "--auto-approve", "--verify", "--atomic")
	if code != exitError {
		t.Errorf("exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	golden(t, "apply_verify_atomic.txt", out)
	var rolled []string
	for _, c := range f.calls {
		if strings.HasSuffix(c, " rollback") {
			rolled = append(rolled, strings.Fields(c)[0])
		}
	}
	if len(rolled) != 2 || !contains(rolled, "lvs01") || !contains(rolled, "beijing") {
		t.Errorf("rolled back %v, want beijing and lvs01 (shanghai was not changed)", rolled)
	}
	if i, j := indexOf(f.calls, "lvs01 apply"), indexOf(f.calls, "lvs01 probe"); i < 0 || j < i {
		t.Errorf("calls %v: the probe comes after the apply", f.calls)
	}
}

func TestApplyVerify(t *testing.T) {
	// Healthy: exit 0, the verify's tables after the apply's report, nothing rolled back.
	f := &verifyHosts{changes: verifyChanges()}
	out, errOut, code := runVerify(t, f, "apply", "--auto-approve", "--verify", "--atomic")
	if code != exitOK || !strings.Contains(out, "Apply complete! 2 hosts changed.\n\nVerifying the path through the tunnel to every destination:\n\n# tcp/198.18.48.180:80 from lvs01\n") ||
		!strings.HasSuffix(out, "\nVerify complete: 2 destinations answer through the tunnel.\n") || strings.Contains(strings.Join(f.calls, ","), "rollback") {
		t.Errorf("exit %d\n%s\n%s\ncalls %v", code, out, errOut, f.calls)
	}
	// Without --atomic a failed verify keeps the changes, and exits 1.
	f = brokenBeijing()
	f.changes = verifyChanges()
	out, _, code = runVerify(t, f, "apply", "--auto-approve", "--verify")
	if code != exitError || !strings.Contains(out, "Verify failed: the hosts keep this run's changes (tunplan rollback undoes them).") || strings.Contains(strings.Join(f.calls, ","), "rollback") {
		t.Errorf("exit %d\n%s\ncalls %v", code, out, f.calls)
	}
	// Nothing to change: still verified; --atomic has nothing to roll back.
	f = brokenBeijing()
	out, _, code = runVerify(t, f, "apply", "--auto-approve", "--verify", "--atomic")
	if code != exitError || !strings.Contains(out, "No changes. 3 hosts match the plan.") ||
		!strings.Contains(out, "Verify failed (--atomic): this run changed no host, so there is nothing to roll back.") {
		t.Errorf("exit %d\n%s", code, out)
	}
	// --json carries the verify and its roll back.
	f = brokenBeijing()
	f.changes = verifyChanges()
	out, _, code = runVerify(t, f, "apply", "--auto-approve", "--verify", "--atomic", "--json")
	var doc struct {
		Status string
		Verify struct {
			Status     string
			RolledBack []string `json:"rolled_back"`
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != exitError || doc.Status != "failed" || doc.Verify.Status != "failed" ||
		strings.Join(doc.Verify.RolledBack, ",") != "beijing,lvs01" {
		t.Errorf("exit %d, %v, %+v\n%s", code, err, doc, out)
	}
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}
