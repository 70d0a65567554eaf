package plans

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/tunplan/tunplan/modules/protocol"
)

// HealthCheck is a virtual_service's health_check block: how its directors' watcher checks each
// destination, through the service's own tunnel, and quiesces (weight 0) the ones that fail.
type HealthCheck struct {
	Type         protocol.CheckType
	Path         string           // http, https: default "/"
	Host         string           // http, https: the Host header and TLS server name; "" is the VIP
	ExpectStatus int              // http, https: default 200
	ExpectBody   string           // http, https: a substring of the body; "" checks none
	Payload      protocol.Payload // udp: the service's probe block, the datagram sent and the reply's expected start
	Interval     time.Duration
	Timeout      time.Duration
	Fall         int // consecutive failures that quiesce a destination
	Rise         int // consecutive successes that give it its plan weight back
	OnFailure    protocol.FailureAction
	DeclRange    hcl.Range
}

// The health_check defaults and limits.
const (
	DefaultCheckInterval = 2 * time.Second
	DefaultCheckTimeout  = time.Second
	DefaultCheckFall     = 3
	DefaultCheckRise     = 2
	MinCheckInterval     = 100 * time.Millisecond
	MaxCheckInterval     = time.Hour
	MinCheckTimeout      = 10 * time.Millisecond
	MaxCheckCount        = 100 // fall and rise
)

var healthCheckSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "type"}, {Name: "path"}, {Name: "host"}, {Name: "expect_status"}, {Name: "expect_body"},
	{Name: "interval"}, {Name: "timeout"}, {Name: "fall"}, {Name: "rise"}, {Name: "on_failure"},
}}

// httpOnly are the attributes of http and https checks.
var httpOnly = []string{"path", "host", "expect_status", "expect_body"}

// healthCheck decodes a virtual_service's health_check block. It returns nil for type "none" and
// when the block is in error. protocolKnown is false when the service's protocol is in error: what
// depends on it (the default type among others) is then not judged. A udp check sends the
// service's probe block, so s.Probe must be decoded already.
func (l *loader) healthCheck(s *VirtualService, b *hcl.Block, protocolKnown bool) *HealthCheck {
	c, d := b.Body.Content(healthCheckSchema)
	l.diags = append(l.diags, d...)
	if d.HasErrors() {
		return nil
	}
	ok := true
	udp := s.Protocol == "udp"
	hc := &HealthCheck{Type: protocol.CheckTCP, Path: "/", ExpectStatus: 200, Interval: DefaultCheckInterval, Timeout: DefaultCheckTimeout,
		Fall: DefaultCheckFall, Rise: DefaultCheckRise, OnFailure: protocol.Quiesce, DeclRange: b.DefRange}
	if udp {
		hc.Type = protocol.CheckUDP
	}
	typeKnown, none := protocolKnown, false // the default type is the protocol's
	typeAt := b.DefRange                    // where a refusal of the type points: its attribute, or the block for the default
	if a := c.Attributes["type"]; a != nil {
		typeKnown, typeAt = false, a.Expr.Range()
		if v, vok := l.str(a); vok {
			switch v {
			case "tcp", "http", "https", "udp":
				hc.Type, typeKnown = protocol.CheckType(v), true
			case "none":
				none, typeKnown = true, true
			default:
				l.errorf(a.Expr.Range(), "Unknown health check type", "Type %q is not a check tunplan runs%s: use %s (\"tcp\", the default of a TCP service, connects to VIP:port; \"http\" and \"https\" also GET path; \"udp\", the default of a UDP service, sends its probe block and reads the reply; \"none\" turns checking off).",
					v, suggest(strings.ToLower(v), protocol.CheckTypes), quotedList(protocol.CheckTypes))
			}
		}
		ok = ok && typeKnown
		switch {
		case !protocolKnown || !typeKnown || none:
		case hc.Type == protocol.CheckUDP && s.Protocol == "tcp":
			ok = false
			l.errorf(typeAt, "UDP check on a TCP service",
				"virtual_service %q is a TCP service: a udp check sends a datagram and waits for one back, which a TCP service does not answer. Set type = \"tcp\" (the default), \"http\" or \"https\"; or set protocol = \"udp\" if %q is a UDP service.", s.Name, s.Name)
		case hc.Type != protocol.CheckUDP && udp:
			ok = false
			fix := "Set type = \"udp\", or remove type (udp is the default of a UDP service): it sends the service's probe block and reads the reply."
			if s.FWMark != 0 {
				fix = "Remove the health_check block, or set type = \"none\": a firewall-mark service has no probe block for a udp check to send."
			}
			l.errorf(typeAt, "TCP check on a UDP service",
				"virtual_service %q is a UDP service, but type %q checks over TCP, which the service does not carry. %s", s.Name, hc.Type, fix)
		}
	}
	if typeKnown && !none && !hc.isHTTP() {
		detail := "A tcp check only connects to VIP:port: it sends no request and reads no answer, so %[1]s means nothing to it. Remove %[1]s, or set type = \"http\" (or \"https\") to check the answer."
		if hc.Type == protocol.CheckUDP {
			detail = "A udp check sends the service's probe block and checks the start of the reply (the probe block's expect), so %[1]s means nothing to it. Remove %[1]s."
		}
		for _, name := range httpOnly {
			if a := c.Attributes[name]; a != nil {
				ok = false
				l.errorf(a.NameRange, "Attribute applies to http and https checks only", detail, name)
			}
		}
	}
	if a := c.Attributes["path"]; a != nil {
		if v, vok := l.str(a); !vok {
			ok = false
		} else if !strings.HasPrefix(v, "/") {
			ok = false
			l.errorf(a.Expr.Range(), "Invalid check path", "path %q must start with \"/\": it is the path of the request, such as \"/\" or \"/healthz\" (a query may follow: \"/status?full=1\").", v)
		} else if i := strings.IndexFunc(v, forbiddenInRequest); i >= 0 {
			ok = false
			l.errorf(a.Expr.Range(), "Invalid check path", "path %q holds %q, which a request line cannot carry: escape spaces and control characters as %%20, %%0A and so on.", v, v[i:i+1])
		} else {
			hc.Path = v
		}
	}
	if a := c.Attributes["host"]; a != nil {
		if v, vok := l.str(a); !vok {
			ok = false
		} else if i := strings.IndexFunc(v, forbiddenInRequest); v == "" || i >= 0 {
			ok = false
			l.errorf(a.Expr.Range(), "Invalid check host", "host %q is not a host name: it is the Host header (and TLS server name) of the check's request, such as \"www.example.com\", without spaces or control characters. Remove it to send the VIP.", v)
		} else {
			hc.Host = v
		}
	}
	if a := c.Attributes["expect_status"]; a != nil {
		if v, vok := l.intIn(a, 100, 599, "expect_status", "an HTTP status code from 100 to 599, such as 200"); vok {
			hc.ExpectStatus = int(v)
		} else {
			ok = false
		}
	}
	if a := c.Attributes["expect_body"]; a != nil {
		if v, vok := l.str(a); vok {
			hc.ExpectBody = v
		} else {
			ok = false
		}
	}
	interval, intervalOK := l.duration(c.Attributes["interval"], DefaultCheckInterval, MinCheckInterval, MaxCheckInterval)
	timeout, timeoutOK := l.duration(c.Attributes["timeout"], DefaultCheckTimeout, MinCheckTimeout, MaxCheckInterval)
	hc.Interval, hc.Timeout = interval, timeout
	ok = ok && intervalOK && timeoutOK
	if intervalOK && timeoutOK && timeout >= interval {
		ok = false
		at, at2 := c.Attributes["timeout"], c.Attributes["interval"]
		if at == nil {
			at = at2
		}
		l.errorf(at.Expr.Range(), "Check timeout not shorter than its interval",
			"timeout %s is not shorter than interval %s: a check must end before the next one starts. Shorten timeout or lengthen interval (the defaults are %s and %s).", durString(timeout), durString(interval), durString(DefaultCheckTimeout), durString(DefaultCheckInterval))
	}
	for _, n := range []struct {
		name string
		to   *int
		what string
	}{{"fall", &hc.Fall, "the failures in a row that quiesce a destination"}, {"rise", &hc.Rise, "the successes in a row that give it its weight back"}} {
		if a := c.Attributes[n.name]; a != nil {
			if v, vok := l.intIn(a, 1, MaxCheckCount, n.name, fmt.Sprintf("from 1 to %d, %s", MaxCheckCount, n.what)); vok {
				*n.to = int(v)
			} else {
				ok = false
			}
		}
	}
	if a := c.Attributes["on_failure"]; a != nil {
		if v, vok := l.str(a); !vok {
			ok = false
		} else if !slices.Contains(protocol.FailureActions, v) {
			ok = false
			l.errorf(a.Expr.Range(), "Unknown failure action", "on_failure %q is not known%s: use \"quiesce\" (the default: weight 0, established connections finish) or \"remove\" (the destination leaves the service, and its connections' packets are dropped, as keepalived does).",
				v, suggest(v, protocol.FailureActions))
		} else if hc.OnFailure = protocol.FailureAction(v); hc.OnFailure == protocol.Remove && s.Scheduler == "mh" {
			ok = false
			l.errorf(a.Expr.Range(), "on_failure = \"remove\" on an mh service",
				"virtual_service %q uses mh (Maglev hashing): removing a destination rebuilds its lookup table and moves flows of other destinations, while weight 0 keeps its slots and only marks them unavailable. Use on_failure = \"quiesce\" (the default).", s.Name)
		}
	}
	if none || !typeKnown {
		return nil
	}
	if udp && hc.Type == protocol.CheckUDP && s.Probe == nil {
		why := "has no valid probe block to send. Add one, such as probe { send = \"<text>\" } (or send_hex), with expect = \"<text>\" (or expect_hex) for the start of the reply; or set type = \"none\"."
		if s.FWMark != 0 {
			why = "is a firewall-mark service, which has no probe block (that is for services of one VIP and port): it has nothing to send. Remove the health_check block, or set type = \"none\"."
		}
		l.errorf(typeAt, "UDP check without a probe", "A udp check sends the service's probe datagram and checks the reply, but virtual_service %q %s", s.Name, why)
		return nil
	}
	if !ok {
		return nil
	}
	if !hc.isHTTP() {
		hc.Path, hc.ExpectStatus = "", 0
	}
	if hc.Type == protocol.CheckUDP {
		hc.Payload = *s.Probe
	}
	return hc
}

// isHTTP tells whether the check is an http or https one, which has the httpOnly attributes.
func (hc *HealthCheck) isHTTP() bool {
	return hc.Type == protocol.CheckHTTP || hc.Type == protocol.CheckHTTPS
}

// forbiddenInRequest is what a request line or header cannot carry unescaped.
func forbiddenInRequest(r rune) bool { return r <= ' ' || r == 0x7f }

// duration decodes an optional Go-style duration ("500ms", "2s") in [lo, hi], in whole
// milliseconds; def when a is nil.
func (l *loader) duration(a *hcl.Attribute, def, lo, hi time.Duration) (time.Duration, bool) {
	if a == nil {
		return def, true
	}
	v, ok := l.str(a)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		l.errorf(a.Expr.Range(), "Invalid duration", "%s %q is not a duration: write a number and a unit, such as \"500ms\", \"2s\" or \"1m\".", a.Name, v)
		return 0, false
	case d < lo || d > hi:
		l.errorf(a.Expr.Range(), fmt.Sprintf("Invalid %s", a.Name), "%s %s is out of range: %s must be from %s to %s.", a.Name, durString(d), a.Name, durString(lo), durString(hi))
		return 0, false
	case d%time.Millisecond != 0:
		l.errorf(a.Expr.Range(), fmt.Sprintf("Invalid %s", a.Name), "%s %q is not a whole number of milliseconds: the watcher counts in milliseconds. Round it, such as to %q.", a.Name, v, durString(d.Round(time.Millisecond)))
		return 0, false
	}
	return d, true
}

// durString is d as a plan writes it: "2s", "1m", "1h" rather than "1m0s" and "1h0m0s".
func durString(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func quotedList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// checkPair is one checked destination of the plan: a service (its index in Plan.Services) and a
// realserver. Its probe mark is protocol.ProbeMarkBase plus its index in checkPairs.
type checkPair struct {
	service int
	host    string
}

// checkPairs is every checked (service, realserver) pair of the plan, sorted by service name (in
// declaration order for equal names) and realserver name: the index of a pair is its probe mark's
// offset, the same on every director and whatever hosts Limit selects.
func (p *Plan) checkPairs() []checkPair {
	var out []checkPair
	for i, s := range p.Services {
		if s.Check == nil {
			continue
		}
		for _, r := range s.Realservers {
			out = append(out, checkPair{i, r.Host})
		}
	}
	slices.SortStableFunc(out, func(x, y checkPair) int {
		return cmp.Or(strings.Compare(p.Services[x.service].Name, p.Services[y.service].Name), cmp.Compare(x.service, y.service), strings.Compare(x.host, y.host))
	})
	return out
}

// checkSysctls are what a director that checks needs: the realservers answer a check from the VIP,
// an address of the director's own, which it drops unless accept_local lets it in and loose
// reverse-path filtering passes it (as Seesaw does).
var checkSysctls = []protocol.Sysctl{
	{Key: "net.ipv4.conf.all.accept_local", Value: "1"},
	{Key: "net.ipv4.conf.all.rp_filter", Value: "2"},
}

// quiescentTemplates is what a director with a checked persistent service (of either family: IPVS
// has one set of sysctls) needs so that a destination at weight 0 (quiesced by its checks, or
// drained) gets no new connection from the clients it had: the persistence template that pins a
// client to it expires instead of outliving the change (Documentation/networking/ipvs-sysctl.rst).
var quiescentTemplates = protocol.Sysctl{Key: "net.ipv4.vs.expire_quiescent_template", Value: "1"}

// validateChecks checks what health checks need across the plan: at most protocol.ProbeMarks
// checked destinations, an address of the service's family on each director that checks it (where
// checks leave from), and no sysctl a director that checks needs set otherwise on it by another role.
func (l *loader) validateChecks(p *Plan) {
	pairs := p.checkPairs()
	if len(pairs) > int(protocol.ProbeMarks) {
		s := &p.Services[pairs[protocol.ProbeMarks].service]
		l.errorf(s.Check.DeclRange, "Too many checked destinations",
			"The plan checks %d destinations (a service's realservers, for each service with a health_check), but each needs a probe service of its own, whose mark comes from the range %#x to %#x: at most %d. Check fewer services, or set type = \"none\" on some.",
			len(pairs), protocol.ProbeMarkBase, protocol.ProbeMarkBase+protocol.ProbeMarks-1, protocol.ProbeMarks)
	}
	// The sysctls the other roles set: a realserver of an IPv4 service sets all.rp_filter=0.
	rpFilterBy := map[string]*VirtualService{}
	for i := range p.Services {
		s := &p.Services[i]
		if vips := s.AllVIPs(); len(vips) == 0 || !vips[0].Is4() {
			continue
		}
		for _, r := range s.Realservers {
			if rpFilterBy[r.Host] == nil {
				rpFilterBy[r.Host] = s
			}
		}
	}
	reported := map[string]bool{}
	for i := range p.Services {
		s := &p.Services[i]
		if s.Check == nil {
			continue
		}
		for j, d := range s.Directors {
			h, ok := p.all[d]
			if !ok || !h.Has(protocol.Director) || reported[d] {
				continue
			}
			family := s.AllVIPs()[0]
			if len(h.Addresses) > 0 && !h.AddressOf(family).IsValid() {
				reported[d] = true
				fam := map[bool]string{true: "IPv4", false: "IPv6"}[family.Is4()]
				l.errorf(s.ranges.directors[j], "Director has no "+fam+" address",
					"virtual_service %q has a health_check, whose checks leave director %q from its %s address, but it has only %s (declared at %s). Add its %s address, as address = [\"<IPv4>\", \"<IPv6>\"], or remove the health_check.", s.Name, d, fam, h.Address, h.DeclRange, fam)
				continue
			}
			if other := rpFilterBy[d]; other != nil && family.Is4() {
				reported[d] = true
				l.errorf(s.Check.DeclRange, "Health check on a director that is a realserver",
					"Director %q checks virtual_service %q, which needs net.ipv4.conf.all.rp_filter=2 (loose reverse-path filtering) and accept_local=1 on it, so that the realservers' answers, which come from the VIP, get in; but it is also a realserver of virtual_service %q (%s), which needs net.ipv4.conf.all.rp_filter=0. Check from another director, move the realserver role to another host, or set type = \"none\".",
					d, s.Name, other.Name, other.DeclRange)
			}
		}
	}
}

// desiredCheck is what the directors of s get for its health check (nil when it has none): the
// check of its first VIP vip, its Source left for each director to fill, and one probe service per destination of svc,
// its desired IPVS service; mark is a destination's probe mark. A probe service is a
// firewall-mark service of that one destination on the checked port, with the service's tunnel:
// the watcher's socket marks a check's packets, and IPVS wraps them as it wraps a client's. It
// needs no mark rule.
func (s *VirtualService) desiredCheck(svc protocol.Service, vip netip.Addr, mark func(protocol.Destination) uint32) (*protocol.HealthCheck, []protocol.Service) {
	if s.Check == nil {
		return nil, nil
	}
	port := s.Port
	if s.FWMark != 0 {
		port = s.Ports[0]
	}
	hc := &protocol.HealthCheck{
		Service:    svc.Key(),
		Type:       s.Check.Type,
		Port:       port,
		VIP:        vip,
		IntervalMS: int(s.Check.Interval / time.Millisecond),
		TimeoutMS:  int(s.Check.Timeout / time.Millisecond),
		Fall:       s.Check.Fall,
		Rise:       s.Check.Rise,
		OnFailure:  s.Check.OnFailure,
		Payload:    s.Check.Payload, // udp only
	}
	hc.Path, hc.Host, hc.ExpectStatus, hc.ExpectBody = s.Check.Path, s.Check.Host, s.Check.ExpectStatus, s.Check.ExpectBody // a tcp or udp check has none (healthCheck)
	unspec := netip.IPv4Unspecified()
	if vip.Is6() {
		unspec = netip.IPv6Unspecified()
	}
	var probes []protocol.Service
	for _, dst := range svc.Destinations {
		m := mark(dst)
		hc.Destinations = append(hc.Destinations, protocol.CheckedDestination{Address: dst.Address, Port: dst.Port, Weight: dst.Weight, Mark: m, Tunnel: dst.Tunnel})
		probes = append(probes, protocol.Service{Address: unspec, FWMark: m, Scheduler: "rr", Destinations: []protocol.Destination{
			{Address: dst.Address, Port: port, Weight: 1, Forward: protocol.ForwardTunnel, Tunnel: s.Tunnel},
		}})
	}
	return hc, probes
}
