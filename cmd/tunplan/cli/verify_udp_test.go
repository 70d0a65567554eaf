package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tunplan/tunplan/inventory/fleet"
	"github.com/tunplan/tunplan/inventory/target"
	"github.com/tunplan/tunplan/modules/protocol"
)

// udpServices are added to the two-region example: a DNS service with a probe block, and a syslog
// service without one.
const udpServices = `
virtual_service "dns" {
  vip       = var.vip
  protocol  = "udp"
  port      = 53
  directors = ["lvs01"]
  realserver "shanghai" {}
  realserver "beijing" {}
  probe {
    send_hex   = "7470 0100 0001 0000 0000 0000 07 6578616d706c65 03 636f6d 00 0001 0001"
    expect_hex = "7470"
  }
}

virtual_service "syslog" {
  vip       = var.vip
  protocol  = "udp"
  port      = 514
  directors = ["lvs01"]
  realserver "beijing" {}
}
`

// udpHosts answers the directors' UDP probes from their own table, by RIP (ok with an RTT when the
// RIP is not in it), and records every probe sent; a realserver reads byPort's facts of the paths
// on that port (verifyHosts' facts of the others).
type udpHosts struct {
	*verifyHosts
	udp    map[string]protocol.ProbeResult
	byPort map[uint16][]protocol.Fact
	probes []protocol.Probe
}

type udpSession struct {
	fleet.Session
	u *udpHosts
}

func (u *udpHosts) connect(t target.Target) (fleet.Session, error) {
	s, err := u.verifyHosts.connect(t)
	if err != nil {
		return nil, err
	}
	return udpSession{s, u}, nil
}

func (s udpSession) Run(req protocol.Request) (protocol.Response, error) {
	resp, err := s.Session.Run(req)
	if err != nil {
		return resp, err
	}
	s.u.mu.Lock()
	defer s.u.mu.Unlock()
	if req.Op == protocol.OpExplain {
		for i, pf := range resp.Facts {
			if f, ok := s.u.byPort[pf.Path.Port]; ok {
				resp.Facts[i].Facts = f
			}
		}
	}
	if req.Op != protocol.OpProbe {
		return resp, nil
	}
	s.u.probes = append(s.u.probes, req.Probes...)
	for i, p := range req.Probes {
		if p.Protocol != "udp" {
			continue
		}
		r, ok := s.u.udp[p.RIP.String()]
		if !ok {
			r = protocol.ProbeResult{Outcome: protocol.ProbeOK, RTTMicros: 655, PathMTU: 1500}
		}
		r.Probe = p
		resp.Probes[i] = r
	}
	return resp, nil
}

func runUDPVerify(t *testing.T, u *udpHosts, args ...string) (string, string, int) {
	t.Helper()
	src, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	plan := filepath.Join(t.TempDir(), "tunplan.hcl")
	if err := os.WriteFile(plan, append(src, udpServices...), 0o644); err != nil {
		t.Fatal(err)
	}
	return runOn(t, u.connect, plan, args...)
}

// TestVerifyUDPHealthy: the director sends the plan's probe to each destination of the DNS service
// (and no payload with the TCP probes, no probe to the syslog service); both answer; syslog's
// realserver is read and finds nothing wrong.
func TestVerifyUDPHealthy(t *testing.T) {
	u := &udpHosts{verifyHosts: &verifyHosts{facts: map[string][]protocol.Fact{"beijing": healthyFacts("198.18.10.182")}}}
	out, errOut, code := runUDPVerify(t, u, "verify")
	if code != exitOK || errOut != "" {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	golden(t, "verify_udp_ok.txt", out)
	query := protocol.Bytes("\x74\x70\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01")
	var udp []string
	for _, p := range u.probes {
		switch {
		case p.Protocol == "tcp" && p.Payload != (protocol.Payload{}):
			t.Errorf("a TCP probe with a payload: %+v", p)
		case p.Protocol == "udp":
			if p.Port != 53 || p.Send != query || p.Expect != "\x74\x70" || p.Source.String() != "198.18.48.181" {
				t.Errorf("UDP probe %+v", p)
			}
			udp = append(udp, p.RIP.String())
		}
	}
	if strings.Join(udp, ",") != "198.18.1.183,198.18.10.182" {
		t.Errorf("UDP probes to %v", udp)
	}
	if strings.Join(u.calls, ",") != "lvs01 probe,beijing explain" {
		t.Errorf("calls %v: the director probes, beijing is asked about the syslog path", u.calls)
	}
}

// TestVerifyUDPFailures: a refused UDP destination is explained by its realserver; a wrong reply's
// cause is what was wrong with it; both fail the verify.
func TestVerifyUDPFailures(t *testing.T) {
	facts := healthyFacts("198.18.10.182")
	facts[4] = protocol.Fact{Name: "listening on VIP:port", Value: "nothing on port 53",
		Cause: "nothing listens on 198.18.48.180:53 (nor on any other address on port 53)"}
	wrong := `reply does not start with the expected bytes: got 0000810000010000000000000000, 14 bytes`
	u := &udpHosts{
		verifyHosts: &verifyHosts{facts: map[string][]protocol.Fact{"beijing": facts, "shanghai": healthyFacts("198.18.1.183")}},
		byPort:      map[uint16][]protocol.Fact{514: healthyFacts("198.18.10.182")},
		udp: map[string]protocol.ProbeResult{
			"198.18.10.182": {Outcome: protocol.ProbeRefused, RTTMicros: 402, Detail: "ICMP port unreachable from 198.18.48.180"},
			"198.18.1.183":  {Outcome: protocol.ProbeWrongReply, RTTMicros: 977, Detail: wrong},
		},
	}
	out, errOut, code := runUDPVerify(t, u, "verify")
	if code != exitDrift || errOut != "" {
		t.Errorf("exit %d, want 2; stderr %q", code, errOut)
	}
	golden(t, "verify_udp_failed.txt", out)
	if strings.Join(u.calls, ",") != "lvs01 probe,beijing explain" {
		t.Errorf("calls %v: shanghai, whose reply was wrong, is not asked why", u.calls)
	}

	out, _, code = runUDPVerify(t, u, "verify", "--json")
	var doc struct {
		Status   string
		Services []struct {
			Service      string
			Destinations []struct{ Realserver, Outcome, Detail, Cause string }
		}
		Summary struct {
			Probed, Failed int
			NotProbed      int `json:"not_probed"`
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != exitDrift {
		t.Fatalf("exit %d, %v\n%s", code, err, out)
	}
	if doc.Status != "failed" || len(doc.Services) != 3 || doc.Summary.Probed != 4 || doc.Summary.Failed != 2 || doc.Summary.NotProbed != 1 {
		t.Fatalf("document:\n%s", out)
	}
	d := doc.Services[1].Destinations
	if doc.Services[1].Service != "udp/198.18.48.180:53" || d[0].Outcome != "wrong reply" || d[0].Cause != wrong ||
		d[1].Outcome != "refused" || d[1].Cause != "nothing listens on 198.18.48.180:53 (nor on any other address on port 53)" ||
		d[1].Detail != "ICMP port unreachable from 198.18.48.180" {
		t.Errorf("destinations %+v", d)
	}
}
