package plans

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/tunplan/tunplan/modules/protocol"
)

var (
	serviceSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "vip"}, {Name: "protocol"}, {Name: "port"}, {Name: "scheduler"}, {Name: "persistence"}, {Name: "directors"}, {Name: "tunnel"},
			{Name: "fwmark"}, {Name: "vips"}, {Name: "ports"},
		},
		Blocks: []hcl.BlockHeaderSchema{{Type: "realserver", LabelNames: []string{"host"}}, {Type: "probe"}, {Type: "gue"}, {Type: "gre"}, {Type: "health_check"}},
	}
	realserverSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "weight"}, {Name: "port"}}}
	probeSchema      = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "send"}, {Name: "send_hex"}, {Name: "expect"}, {Name: "expect_hex"}}}
)

// service decodes one virtual_service block. Attributes in error keep their zero value.
func (l *loader) service(b *hcl.Block) VirtualService {
	s := VirtualService{Name: b.Labels[0], DeclRange: b.DefRange, Protocol: "tcp", Scheduler: "wlc"}
	c, d := b.Body.Content(serviceSchema)
	l.diags = append(l.diags, d...)

	if a := c.Attributes["fwmark"]; a != nil {
		l.fwmark(&s, a, c)
	} else {
		l.address(&s, c)
	}
	protocolKnown := true // false when the protocol attribute is in error
	if a := c.Attributes["protocol"]; a != nil {
		protocolKnown = false
		if v, ok := l.str(a); ok {
			protocolKnown = true
			s.Protocol = v
			if !slices.Contains(Protocols, v) {
				l.errorf(a.Expr.Range(), "Unknown protocol", "Protocol %q is not supported: use \"tcp\" or \"udp\"%s.", v, suggest(strings.ToLower(v), Protocols))
			}
		}
	}
	if a := c.Attributes["scheduler"]; a != nil {
		if v, ok := l.str(a); ok {
			s.Scheduler = v
			if !slices.Contains(Schedulers, v) {
				l.errorf(a.Expr.Range(), "Unknown scheduler", "Scheduler %q is not an IPVS scheduler%s. Valid schedulers: %s.", v, suggest(v, Schedulers), strings.Join(Schedulers, ", "))
			}
		}
	}
	if a := c.Attributes["persistence"]; a != nil {
		if v, ok := l.intIn(a, 0, 1<<32-1, "persistence", "a number of seconds, 0 (not persistent) or more"); ok {
			s.Persistence = uint32(v)
		}
	}
	if a := c.Attributes["directors"]; a == nil {
		l.errorf(b.DefRange, "Missing required attribute \"directors\"", "virtual_service %q needs directors = [\"<host>\", …]: the director hosts that carry it.", s.Name)
	} else if names, ranges, ok := l.strList(a); ok {
		if len(names) == 0 {
			l.errorf(a.Expr.Range(), "Service has no directors", "virtual_service %q must be carried by at least one director: name director hosts in directors.", s.Name)
		}
		seen := map[string]bool{}
		for i, n := range names {
			if seen[n] {
				l.errorf(ranges[i], "Duplicate director", "Host %q is listed twice in directors. Remove one.", n)
				continue
			}
			seen[n] = true
			s.Directors = append(s.Directors, n)
			s.ranges.directors = append(s.ranges.directors, ranges[i])
		}
	}
	l.tunnel(&s, c)
	rsSeen := map[string]hcl.Range{}
	for _, rb := range c.Blocks.OfType("realserver") {
		r := RealserverRef{Host: rb.Labels[0], Weight: 1, DeclRange: rb.DefRange}
		if prev, dup := rsSeen[r.Host]; dup {
			l.errorf(rb.LabelRanges[0], "Duplicate realserver", "Realserver %q was previously declared in this service at %s. Remove one of them.", r.Host, prev)
			continue
		}
		rsSeen[r.Host] = rb.DefRange
		rc, d := rb.Body.Content(realserverSchema)
		l.diags = append(l.diags, d...)
		if a := rc.Attributes["weight"]; a != nil {
			if v, ok := l.intIn(a, 0, 65535, "weight", "a weight from 0 to 65535 (0 drains the realserver)"); ok {
				r.Weight = uint32(v)
			}
		}
		if a := rc.Attributes["port"]; a != nil && s.FWMark != 0 {
			l.errorf(a.NameRange, "Realserver port on a firewall-mark service",
				"A firewall-mark service forwards each packet to the port it was sent to (ports = [...]), so its realservers take no port. Remove it.")
		} else if a != nil && s.Port != 0 {
			if v, ok := l.intIn(a, 1, 65535, "port", "a port from 1 to 65535"); ok && uint16(v) != s.Port {
				l.errorf(a.Expr.Range(), "Realserver port differs from the service port",
					"In IP-tunnel mode the director forwards the client's packet unchanged inside an IPIP header, so the realserver receives it on the service port %d: tunnel mode cannot map ports. Remove port, or set it to %d and make the realserver listen there.", s.Port, s.Port)
			}
		}
		s.Realservers = append(s.Realservers, r)
		s.ranges.realservers = append(s.ranges.realservers, rb.LabelRanges[0])
	}
	if len(rsSeen) == 0 {
		l.errorf(b.DefRange, "Service has no realservers", "virtual_service %q sends traffic nowhere: add at least one realserver \"<host>\" { weight = 1 } block (or a dynamic \"realserver\" block).", s.Name)
	}
	var probeAt hcl.Range
	for _, pb := range c.Blocks.OfType("probe") {
		if probeAt != (hcl.Range{}) {
			l.errorf(pb.DefRange, "Duplicate probe block", "virtual_service %q already has a probe block at %s: a service has one probe. Remove one of them.", s.Name, probeAt)
			continue
		}
		probeAt = pb.DefRange
		if !protocolKnown {
			continue
		}
		if s.Protocol == "tcp" {
			l.errorf(pb.DefRange, "Probe block on a TCP service",
				"tunplan verify probes a TCP service with a SYN and needs no payload: a probe block is for UDP services, which have no handshake. Remove the probe block, or set protocol = \"udp\" if %q is a UDP service.", s.Name)
			continue
		}
		if vips := s.AllVIPs(); s.FWMark != 0 || (len(vips) > 0 && vips[0].Is6()) {
			l.errorf(pb.DefRange, "Probe block on a service verify does not probe",
				"tunplan verify probes the UDP services of one IPv4 VIP and port, in IPIP; virtual_service %q is a firewall-mark or IPv6 service, which it reports as not probed. Remove the probe block.", s.Name)
			continue
		}
		s.Probe = l.probe(pb)
	}
	var checkAt hcl.Range
	for _, hb := range c.Blocks.OfType("health_check") {
		if checkAt != (hcl.Range{}) {
			l.errorf(hb.DefRange, "Duplicate health_check block", "virtual_service %q already has a health_check block at %s: a service has one check. Remove one of them.", s.Name, checkAt)
			continue
		}
		checkAt = hb.DefRange
		s.Check = l.healthCheck(&s, hb, protocolKnown)
	}
	return s
}

// probe decodes a virtual_service's probe block: the datagram verify sends to each destination
// (send or send_hex) and the bytes the reply must start with (expect or expect_hex, optional). It
// returns nil when the block is in error.
func (l *loader) probe(b *hcl.Block) *protocol.Payload {
	c, d := b.Body.Content(probeSchema)
	l.diags = append(l.diags, d...)
	if d.HasErrors() {
		return nil
	}
	send, sendOK := l.payload(c, "send", "the datagram's payload")
	expect, expectOK := l.payload(c, "expect", "the bytes the reply must start with")
	if !sendOK || !expectOK {
		return nil
	}
	if send == nil {
		l.errorf(b.DefRange, "Missing required attribute \"send\"",
			"A probe block needs send = \"<text>\" or send_hex = \"<hex>\": the datagram the directors send to VIP:port through the tunnel, such as a DNS query. Add one; expect = \"<text>\" or expect_hex = \"<hex>\" then checks the start of the reply.")
		return nil
	}
	return &protocol.Payload{Send: protocol.Bytes(*send), Expect: protocol.Bytes(deref(expect))}
}

// payload decodes name (text) or name_hex (bytes in hex) of a probe block: nil when neither is
// given, false when one is in error or both are given.
func (l *loader) payload(c *hcl.BodyContent, name, what string) (*string, bool) {
	text, hexa := c.Attributes[name], c.Attributes[name+"_hex"]
	if text != nil && hexa != nil {
		first, second := text, hexa
		if hexa.Range.Start.Byte < text.Range.Start.Byte {
			first, second = hexa, text
		}
		l.errorf(second.NameRange, "Conflicting probe attributes",
			"%s and %s_hex both give %s (%s is at %s): keep one, %s for text or %s_hex for binary data.", name, name, what, first.Name, first.NameRange, name, name)
		return nil, false
	}
	var v string
	var a *hcl.Attribute
	switch {
	case text != nil:
		s, ok := l.str(text)
		if !ok {
			return nil, false
		}
		v, a = s, text
	case hexa != nil:
		s, ok := l.str(hexa)
		if !ok {
			return nil, false
		}
		digits := strings.Join(strings.Fields(s), "")
		raw, err := hex.DecodeString(digits)
		if err != nil {
			why := "it has an odd number of digits"
			var bad hex.InvalidByteError
			if errors.As(err, &bad) {
				why = fmt.Sprintf("%q is not a hex digit", rune(bad))
			}
			l.errorf(hexa.Expr.Range(), "Invalid hex", "%s_hex is not hexadecimal: %s. Write the bytes as pairs of hex digits, spaces allowed between them, such as \"7470 0100 0001\"; or use %s for text.", name, why, name)
			return nil, false
		}
		v, a = string(raw), hexa
	default:
		return nil, true
	}
	switch {
	case len(v) > protocol.MaxProbePayload:
		l.errorf(a.Expr.Range(), "Probe payload too large",
			"%s is %d bytes; a probe carries at most %d, so that its datagram fits, with its IPv4, UDP and IPIP headers, through a 1500-byte MTU unfragmented. Shorten it.", a.Name, len(v), protocol.MaxProbePayload)
		return nil, false
	case len(v) == 0 && name == "send":
		l.errorf(a.Expr.Range(), "Empty probe payload", "%s is empty: a probe sends a datagram the service answers, such as a DNS query. Give it at least one byte.", a.Name)
		return nil, false
	}
	return &v, true
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
