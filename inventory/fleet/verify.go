package fleet

import (
	"fmt"
	"time"

	"github.com/tunplan/tunplan/modules/protocol"
)

// The phases of a verify: the directors probe, then the realservers say why what failed failed.
const (
	Probe   Phase = "probe"   // directors: a SYN (or the plan's UDP datagram) to VIP:port in IPIP to every destination they carry
	Explain Phase = "explain" // realservers: the facts about the paths to them that failed (or all)
)

// VerifyOptions set what a verify asks.
type VerifyOptions struct {
	Timeout time.Duration // how long a director waits for the answers; 0: the helper's default (1 s)
	Explain bool          // ask the realservers about every path, not only those that failed
}

// Check is one destination of one service as one director reached it.
type Check struct {
	Director string       // the plan's name of the director that probed
	Service  protocol.Key // the virtual service; for a firewall-mark service, the VIP and port probed
	// Realserver is the plan's name of the host at the destination's address (the RIP); "" when no
	// host of the run has it (--hosts left it out).
	Realserver string
	Result     protocol.ProbeResult // what the probe saw; Outcome "not probed" for a UDP destination without a probe, or a GUE or GRE one
	Facts      []protocol.Fact      // what the realserver read about the path, when it was asked
	Cause      string               // for a failed probe (or a destination not probed): why, as a sentence
	// Tunnel is the destination's tunnel: verify sends IPIP over IPv4 only, so a GUE, GRE or IPv6
	// destination is not probed, nor its realserver asked (whose facts are those of IPIP).
	Tunnel protocol.Tunnel
}

// Failed tells whether the destination was probed and did not answer as it should.
func (c Check) Failed() bool {
	return c.Result.Outcome != protocol.ProbeOK && c.Result.Outcome != protocol.ProbeNotProbed
}

// Verify tests every destination of every service the run's directors carry as IPVS reaches it:
// each director sends a SYN to VIP:port in IPIP to each TCP destination, and the datagram of the
// service's probe (Host.UDPProbes) to each UDP destination, from its data address (the Probe phase).
// The realservers of the destinations that failed (with o.Explain, of all of them; and of the UDP
// destinations without a probe, which are not probed) then read the facts that decide whether they
// answer (the Explain phase), and a failed destination's cause is its realserver's first failing
// fact; a wrong reply's is what was wrong with it (the path works). It changes nothing. A director
// that fails has no checks: its error is the host's.
func (r *Run) Verify(o VerifyOptions) []Check {
	byAddr := map[string]*HostRun{}
	for _, h := range r.Hosts {
		if h.Roles.Has(protocol.Realserver) && h.Address.IsValid() {
			byAddr[h.Address.String()] = h
		}
	}
	// The checks of each director, in the order of its services and destinations; those it probes
	// (TCP, and UDP with a probe) are its probes, in the same order.
	checks := map[*HostRun][]Check{}
	probes := map[*HostRun][]protocol.Probe{}
	var directors []*HostRun
	for _, h := range r.Hosts {
		if !h.Roles.Has(protocol.Director) {
			continue
		}
		directors = append(directors, h)
		for _, s := range h.Desired.Services {
			for _, d := range s.Destinations {
				for _, k := range targets(s, h.Desired.Marks) {
					p := protocol.Probe{Protocol: k.Protocol, VIP: k.Address, Port: k.Port, RIP: d.Address, Source: h.Address}
					if s.Protocol == "udp" {
						p.Payload = h.UDPProbes[s.Key()]
					}
					c := Check{Director: h.Name(), Service: k, Result: protocol.ProbeResult{Probe: p, Outcome: protocol.ProbeNotProbed}, Tunnel: d.Tunnel}
					if rs := byAddr[d.Address.String()]; rs != nil {
						c.Realserver = rs.Name()
					}
					switch {
					case d.Tunnel.Type != protocol.TunnelIPIP:
						c.Cause = fmt.Sprintf("tunnelled by %s: verify sends its probes in IPIP only", d.Tunnel)
					case !k.Address.Is4():
						c.Cause = "an IPv6 service: verify sends its probes in IPIP, over IPv4, only"
					}
					if sent(c) {
						probes[h] = append(probes[h], p)
					}
					checks[h] = append(checks[h], c)
				}
			}
		}
	}
	var probing []*HostRun
	for _, h := range directors {
		if len(probes[h]) > 0 {
			probing = append(probing, h)
		}
	}
	r.request(probing, Probe, func(h *HostRun) protocol.Request {
		return protocol.Request{Op: protocol.OpProbe, Host: h.Name(), Probes: probes[h], TimeoutMS: o.Timeout.Milliseconds()}
	})
	var out []Check
	for _, h := range directors {
		if h.Err() != nil {
			continue
		}
		if len(probes[h]) > 0 {
			res := h.lastResult(Probe)
			if res == nil {
				continue
			}
			if got := res.Response.Probes; len(got) != len(probes[h]) {
				res.Err = fmt.Errorf("host %s: the helper answered %d probe results for %d probes", h.Name(), len(got), len(probes[h]))
				continue
			}
			i := 0
			for j := range checks[h] {
				if sent(checks[h][j]) {
					checks[h][j].Result = res.Response.Probes[i]
					i++
				}
			}
		}
		out = append(out, checks[h]...)
	}
	r.explain(out, byAddr, o.Explain)
	return out
}

// targets are what a director's probes of service s aim at: its VIP and port, or, for a
// firewall-mark service, each VIP and port its mark rules (marks) cover.
func targets(s protocol.Service, marks []protocol.Mark) []protocol.Key {
	if s.FWMark == 0 {
		return []protocol.Key{s.Key()}
	}
	var out []protocol.Key
	for _, m := range marks {
		if m.Mark == s.FWMark && m.Address.Is4() == s.Address.Is4() {
			out = append(out, protocol.Key{Protocol: m.Protocol, Address: m.Address, Port: m.Port})
		}
	}
	return out
}

// ipip tells whether verify can probe c's path: IPIP to an IPv4 VIP.
func ipip(c Check) bool { return c.Tunnel.Type == protocol.TunnelIPIP && c.Result.VIP.Is4() }

// sent tells whether a director sends c's probe: a TCP one, or a UDP one with a datagram to send,
// on a path verify can probe.
func sent(c Check) bool {
	p := c.Result.Probe
	return ipip(c) && (p.Protocol == "tcp" || p.Protocol == "udp" && p.Send != "")
}

// explain asks each realserver about the paths of checks that need it, and fills in their facts
// and causes. A wrong reply needs no explanation (its path works): it is asked about only with all.
func (r *Run) explain(checks []Check, byAddr map[string]*HostRun, all bool) {
	directorAddr := map[string]protocol.Path{}
	pathOf := func(c Check) protocol.Path {
		p := directorAddr[c.Director]
		p.Protocol, p.VIP, p.Port = c.Result.Protocol, c.Result.VIP, c.Result.Port
		return p
	}
	for _, h := range r.Hosts {
		directorAddr[h.Name()] = protocol.Path{Director: h.Address}
	}
	paths := map[*HostRun][]protocol.Path{}
	var asked []*HostRun
	for _, c := range checks {
		rs := byAddr[c.Result.RIP.String()]
		if rs == nil || !ipip(c) || !(all || c.Failed() && c.Result.Outcome != protocol.ProbeWrongReply || c.Result.Outcome == protocol.ProbeNotProbed) {
			continue
		}
		p := pathOf(c)
		if len(paths[rs]) == 0 {
			asked = append(asked, rs)
		}
		if !containsPath(paths[rs], p) {
			paths[rs] = append(paths[rs], p)
		}
	}
	r.request(asked, Explain, func(h *HostRun) protocol.Request {
		return protocol.Request{Op: protocol.OpExplain, Host: h.Name(), Explain: paths[h]}
	})
	facts := map[*HostRun]map[protocol.Path][]protocol.Fact{}
	for _, h := range asked {
		res := h.lastResult(Explain)
		if res == nil || res.Err != nil {
			continue
		}
		if len(res.Response.Facts) != len(paths[h]) {
			res.Err = fmt.Errorf("host %s: the helper answered %d explanations for %d paths", h.Name(), len(res.Response.Facts), len(paths[h]))
			continue
		}
		facts[h] = map[protocol.Path][]protocol.Fact{}
		for _, pf := range res.Response.Facts {
			facts[h][pf.Path] = pf.Facts
		}
	}
	for i := range checks {
		c := &checks[i]
		if !ipip(*c) {
			continue // not probed, for the cause set with it
		}
		rs := byAddr[c.Result.RIP.String()]
		if rs != nil {
			c.Facts = facts[rs][pathOf(*c)]
		}
		if !c.Failed() && c.Result.Outcome != protocol.ProbeNotProbed {
			continue
		}
		c.Cause = cause(*c, rs)
	}
}

// cause says why a check failed: the realserver's first failing fact, else what is known; for a
// wrong reply, what was wrong with it.
func cause(c Check, rs *HostRun) string {
	if c.Result.Outcome == protocol.ProbeWrongReply {
		if c.Result.Detail == "" {
			return "the realserver answered through the tunnel, but not as the plan's probe expects"
		}
		return c.Result.Detail
	}
	for _, f := range c.Facts {
		if !f.OK {
			return f.Cause
		}
	}
	if !c.Failed() { // a UDP destination whose realserver finds nothing wrong
		return ""
	}
	seen := ""
	if c.Result.Detail != "" {
		seen = " (" + c.Result.Detail + ")"
	}
	switch {
	case rs == nil:
		return fmt.Sprintf("%s is not one of the selected hosts, so it was not asked why%s", c.Result.RIP, seen)
	case rs.Err() != nil:
		return fmt.Sprintf("could not ask %s why: %v%s", rs.Name(), rs.Err(), seen)
	case len(c.Facts) == 0:
		return "the realserver said nothing about this path" + seen
	}
	return fmt.Sprintf("nothing %s reads explains it%s: look for a firewall or filter between %s and %s, either way", rs.Name(), seen, c.Director, rs.Name())
}

func containsPath(ps []protocol.Path, p protocol.Path) bool {
	for _, x := range ps {
		if x == p {
			return true
		}
	}
	return false
}

// lastResult is the host's latest result of phase p, to amend; nil when it did not take part.
func (h *HostRun) lastResult(p Phase) *Result {
	for i := len(h.Results) - 1; i >= 0; i-- {
		if h.Results[i].Phase == p {
			return &h.Results[i]
		}
	}
	return nil
}

// Undo rolls back every host this run changed to the generation it had before the run: apply
// --verify --atomic after a failed verify. It reports whether every such host was rolled back.
func (r *Run) Undo() bool {
	r.undo()
	for _, h := range r.Hosts {
		if res, ok := h.Result(Undo); ok && res.Err != nil {
			return false
		}
	}
	return true
}

// ErrBeforeVerify is the host's first failure in a phase other than a verify's (what apply reports
// before apply --verify's own report).
func (h *HostRun) ErrBeforeVerify() error {
	for _, r := range h.Results {
		if r.Err != nil && r.Phase != Probe && r.Phase != Explain {
			return r.Err
		}
	}
	return nil
}
