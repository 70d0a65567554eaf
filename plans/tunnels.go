package plans

import (
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/tunplan/tunplan/modules/protocol"
)

var (
	gueSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "port"}, {Name: "checksum"}, {Name: "remote_checksum"}}}
	greSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "checksum"}}}
)

// tunnel decodes a virtual_service's tunnel attribute and its gue or gre block into s.Tunnel. A
// block must match the tunnel (a gue block with tunnel = "gue"), and GUE needs its block, for the
// port; each block is allowed once.
func (l *loader) tunnel(s *VirtualService, c *hcl.BodyContent) {
	known := true // false when the tunnel attribute is in error: its blocks are then not judged
	var at hcl.Range
	if a := c.Attributes["tunnel"]; a != nil {
		known = false
		at = a.Expr.Range()
		if v, ok := l.str(a); ok {
			switch v {
			case "ipip":
				s.Tunnel.Type, known = protocol.TunnelIPIP, true
			case "gue":
				s.Tunnel.Type, known = protocol.TunnelGUE, true
			case "gre":
				s.Tunnel.Type, known = protocol.TunnelGRE, true
			default:
				l.errorf(at, "Unknown tunnel", "Tunnel %q is not one IPVS can do%s: use \"ipip\" (the default: IP in IP), \"gue\" (UDP to a port, with a gue { port = 6080 } block; Linux 5.2 on the directors) or \"gre\" (Linux 5.3).", v, suggest(strings.ToLower(v), protocol.TunnelTypes))
			}
		}
	}
	var gue, gre *hcl.Block
	for _, kind := range []string{"gue", "gre"} {
		for _, b := range c.Blocks.OfType(kind) {
			first := &gue
			if kind == "gre" {
				first = &gre
			}
			if *first != nil {
				l.errorf(b.DefRange, "Duplicate "+kind+" block", "virtual_service %q already has a %s block at %s: a service has one. Remove one of them.", s.Name, kind, (*first).DefRange)
				continue
			}
			*first = b
			if known && s.Tunnel.Type.String() != kind {
				l.errorf(b.DefRange, "The "+kind+" block does not match the tunnel",
					"A %s block sets up a %s tunnel, but virtual_service %q tunnels by %s. Set tunnel = %q to use it, or remove the block.", kind, strings.ToUpper(kind), s.Name, s.Tunnel.Type, kind)
			}
		}
	}
	if !known {
		return
	}
	if vips := s.AllVIPs(); s.Tunnel.Type != protocol.TunnelIPIP && len(vips) > 0 && vips[0].Is6() {
		l.errorf(at, "Tunnel not supported for IPv6",
			"virtual_service %q has IPv6 VIPs, which tunplan tunnels as IPv6 in IPv6 to the realservers' ip6tnl0. GUE and GRE over IPv6 would need an IPv6 fou listener or ip6gre0 on the realservers, which tunplan does not manage yet. Remove tunnel, or use an IPv4 VIP.", s.Name)
		return
	}
	switch s.Tunnel.Type {
	case protocol.TunnelGUE:
		if gue == nil {
			l.errorf(at, "Missing gue block", "tunnel = \"gue\" sends the requests in UDP to a port of the realservers, where a fou listener takes them: add gue { port = 6080 } to virtual_service %q (any free UDP port of the realservers; checksum and remote_checksum are optional).", s.Name)
			return
		}
		gc, d := gue.Body.Content(gueSchema)
		l.diags = append(l.diags, d...)
		if a := gc.Attributes["port"]; a == nil {
			l.errorf(gue.DefRange, "Missing required attribute \"port\"", "A gue block needs port = <1..65535>: the UDP port the directors send to and the realservers' fou listeners take (6080 is common). Add it.")
		} else if v, ok := l.intIn(a, 1, 65535, "GUE port", "a UDP port from 1 to 65535"); ok {
			s.Tunnel.Port = uint16(v)
			s.ranges.guePort = a.Expr.Range()
		}
		s.Tunnel.Checksum = l.flag(gc, "checksum")
		s.Tunnel.RemoteChecksum = l.flag(gc, "remote_checksum")
		if s.Tunnel.Checksum && s.Tunnel.RemoteChecksum {
			l.errorf(gc.Attributes["remote_checksum"].Expr.Range(), "Conflicting GUE checksums",
				"A GUE tunnel has no checksum, a checksum, or a remote checksum (ipvsadm --tun-nocsum, --tun-csum or --tun-remcsum; keepalived likewise), and remote_checksum already puts a checksum on the outer UDP header. Set only one of checksum and remote_checksum to true.")
			s.Tunnel.Checksum = false
		}
	case protocol.TunnelGRE:
		if gre != nil {
			gc, d := gre.Body.Content(greSchema)
			l.diags = append(l.diags, d...)
			if l.flag(gc, "checksum") {
				// ip_tunnel_rcv drops a packet whose checksum flag differs from the receiving
				// device's icsum, and gre0's cannot be changed (ip_tunnel_changelink refuses the
				// fallback device).
				l.errorf(gc.Attributes["checksum"].Expr.Range(), "GRE checksums are not supported",
					"The realservers receive GRE on gre0, ip_gre's fallback device, whose kernel drops every GRE packet that carries a checksum (its icsum is off, and cannot be turned on for gre0). Set checksum = false, or use tunnel = \"gue\" with checksum = true for checksummed packets.")
			}
		}
	}
}

// flag is an optional boolean attribute of c, false when absent or in error.
func (l *loader) flag(c *hcl.BodyContent, name string) bool {
	if a := c.Attributes[name]; a != nil {
		v, ok := l.boolean(a)
		return ok && v
	}
	return false
}

// validateTunnels checks what spans services: a GUE port must not be the port of a UDP service the
// same realserver serves, since its fou listener takes every datagram to that port.
func (l *loader) validateTunnels(p *Plan) {
	udp := map[string]map[uint16]*VirtualService{} // realserver → UDP service port → service
	for i := range p.Services {
		s := &p.Services[i]
		if s.Protocol != "udp" || s.Port == 0 {
			continue
		}
		for _, r := range s.Realservers {
			if udp[r.Host] == nil {
				udp[r.Host] = map[uint16]*VirtualService{}
			}
			if udp[r.Host][s.Port] == nil {
				udp[r.Host][s.Port] = s
			}
		}
	}
	for i := range p.Services {
		s := &p.Services[i]
		if s.Tunnel.Type != protocol.TunnelGUE || s.Tunnel.Port == 0 {
			continue
		}
		var hosts []string
		var other *VirtualService
		for _, r := range s.Realservers {
			if o := udp[r.Host][s.Tunnel.Port]; o != nil {
				hosts, other = append(hosts, r.Host), o
			}
		}
		if other != nil {
			slices.Sort(hosts)
			l.errorf(s.ranges.guePort, "GUE port is a UDP service port",
				"The realservers' fou listener for virtual_service %q takes every UDP datagram to port %d, on any address, but %s also serve%s virtual_service %q on UDP port %d (%s): its requests would be decapsulated instead of answered. Pick another GUE port.",
				s.Name, s.Tunnel.Port, andList(hosts, 5), plural(len(hosts)), other.Name, other.Port, other.DeclRange)
		}
	}
}

func plural(n int) string {
	if n == 1 {
		return "s"
	}
	return ""
}
