package plans

import (
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

var (
	serviceSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "vip"}, {Name: "protocol"}, {Name: "port"}, {Name: "scheduler"}, {Name: "persistence"}, {Name: "directors"},
		},
		Blocks: []hcl.BlockHeaderSchema{{Type: "realserver", LabelNames: []string{"host"}}},
	}
	realserverSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "weight"}, {Name: "port"}}}
)

// service decodes one virtual_service block. Attributes in error keep their zero value.
func (l *loader) service(b *hcl.Block) VirtualService {
	s := VirtualService{Name: b.Labels[0], DeclRange: b.DefRange, Protocol: "tcp", Scheduler: "wlc"}
	c, d := b.Body.Content(serviceSchema)
	l.diags = append(l.diags, d...)

	if a := c.Attributes["vip"]; a == nil {
		l.errorf(b.DefRange, "Missing required attribute \"vip\"", "virtual_service %q needs vip = \"<IPv4>\": the virtual address clients connect to.", s.Name)
	} else if addr, ok := l.ipv4(a, "VIP"); ok {
		s.VIP = addr
		s.ranges.vip = a.Expr.Range()
		if !addr.IsGlobalUnicast() && !addr.IsPrivate() {
			l.errorf(a.Expr.Range(), "Invalid VIP", "%s cannot be a VIP: it must be a unicast address (not unspecified, loopback, link-local, multicast or broadcast).", addr)
		}
	}
	if a := c.Attributes["protocol"]; a != nil {
		if v, ok := l.str(a); ok {
			s.Protocol = v
			if !slices.Contains(Protocols, v) {
				l.errorf(a.Expr.Range(), "Unknown protocol", "Protocol %q is not supported: use \"tcp\" or \"udp\"%s.", v, suggest(strings.ToLower(v), Protocols))
			}
		}
	}
	if a := c.Attributes["port"]; a == nil {
		l.errorf(b.DefRange, "Missing required attribute \"port\"", "virtual_service %q needs port = <1..65535>: the port clients connect to on the VIP.", s.Name)
	} else if v, ok := l.intIn(a, 1, 65535, "port", "a port from 1 to 65535"); ok {
		s.Port = uint16(v)
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
		if a := rc.Attributes["port"]; a != nil && s.Port != 0 {
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
	return s
}
