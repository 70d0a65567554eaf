package plans

import (
	"net/netip"
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/tunplan/tunplan/modules/protocol"
)

// address decodes the vip and port of a virtual_service that is not a firewall-mark service, and
// refuses the attributes that belong to one.
func (l *loader) address(s *VirtualService, c *hcl.BodyContent) {
	for _, name := range []string{"vips", "ports"} {
		if a := c.Attributes[name]; a != nil {
			l.errorf(a.NameRange, "Attribute applies to firewall-mark services only",
				"%s lists what a firewall-mark service covers; virtual_service %q has no fwmark. Set fwmark = <1..4294967295> to make it one, or use vip = \"<IP>\" and port = <1..65535>.", name, s.Name)
		}
	}
	if a := c.Attributes["vip"]; a == nil {
		l.errorf(s.DeclRange, "Missing required attribute \"vip\"", "virtual_service %q needs vip = \"<IP>\": the virtual address clients connect to, IPv4 or IPv6.", s.Name)
	} else if v, ok := l.str(a); ok {
		if addr, ok := l.vip(v, a.Expr.Range()); ok {
			s.VIP = addr
			s.ranges.vip = a.Expr.Range()
		}
	}
	if a := c.Attributes["port"]; a == nil {
		l.errorf(s.DeclRange, "Missing required attribute \"port\"", "virtual_service %q needs port = <1..65535>: the port clients connect to on the VIP.", s.Name)
	} else if v, ok := l.intIn(a, 1, 65535, "port", "a port from 1 to 65535"); ok {
		s.Port = uint16(v)
	}
}

// fwmark decodes a firewall-mark service: its mark, the VIPs (all of one family) and the ports its
// directors' mark rules cover. vip and port do not apply.
func (l *loader) fwmark(s *VirtualService, mark *hcl.Attribute, c *hcl.BodyContent) {
	if v, ok := l.intIn(mark, 1, 1<<32-1, "fwmark", "a firewall mark from 1 to 4294967295"); ok && protocol.ProbeMark(uint32(v)) {
		l.errorf(mark.Expr.Range(), "Firewall mark in the probe range",
			"fwmark %d (%#x) is in the range tunplan keeps for the directors' health-check probe services, %#x to %#x. Pick a mark outside it.",
			v, v, protocol.ProbeMarkBase, protocol.ProbeMarkBase+protocol.ProbeMarks-1)
	} else if ok {
		s.FWMark = uint32(v)
		s.ranges.fwmark = mark.Expr.Range()
	}
	for _, name := range []string{"vip", "port"} {
		if a := c.Attributes[name]; a != nil {
			l.errorf(a.NameRange, "Attribute does not apply to a firewall-mark service",
				"virtual_service %q is a firewall-mark service (fwmark at %s): it covers every address in vips and every port in ports. Replace %s = … with %ss = [ … ].", s.Name, mark.NameRange, name, name)
		}
	}
	if a := c.Attributes["vips"]; a == nil {
		l.errorf(s.DeclRange, "Missing required attribute \"vips\"", "The firewall-mark service %q needs vips = [\"<IP>\", …]: the VIPs its mark rules cover, which its directors and realservers carry.", s.Name)
	} else if list, ranges, ok := l.strList(a); ok {
		s.ranges.vip = a.Expr.Range()
		if len(list) == 0 {
			l.errorf(a.Expr.Range(), "Firewall-mark service has no VIPs", "vips of virtual_service %q is empty: list the VIPs clients connect to.", s.Name)
		}
		for i, v := range list {
			addr, ok := l.vip(v, ranges[i])
			switch {
			case !ok:
			case slices.Contains(s.VIPs, addr):
				l.errorf(ranges[i], "Duplicate VIP", "VIP %s is listed twice in vips. Remove one.", addr)
			case len(s.VIPs) > 0 && s.VIPs[0].Is4() != addr.Is4():
				l.errorf(ranges[i], "VIPs of two families",
					"%s and %s are of different families, but an IPVS firewall-mark service is IPv4 or IPv6 (ipvsadm -A -f N, or -6 -f N). Put the VIPs of each family in a service of its own, with its own fwmark.", s.VIPs[0], addr)
			default:
				s.VIPs = append(s.VIPs, addr)
			}
		}
	}
	if a := c.Attributes["ports"]; a == nil {
		l.errorf(s.DeclRange, "Missing required attribute \"ports\"", "The firewall-mark service %q needs ports = [<1..65535>, …]: the ports its mark rules cover, such as [80, 443].", s.Name)
	} else {
		s.Ports = l.ports(a)
	}
}

// vip parses a VIP: a unicast address of either family.
func (l *loader) vip(v string, rng hcl.Range) (netip.Addr, bool) {
	addr, ok := l.ip(v, rng, "VIP")
	if ok && !addr.IsGlobalUnicast() && !addr.IsPrivate() {
		l.errorf(rng, "Invalid VIP", "%s cannot be a VIP: it must be a unicast address (not unspecified, loopback, link-local, multicast or broadcast).", addr)
		return netip.Addr{}, false
	}
	return addr, ok
}

// ports decodes a list of distinct ports.
func (l *loader) ports(a *hcl.Attribute) []uint16 {
	v, ok := l.value(a, cty.List(cty.Number))
	if !ok {
		return nil
	}
	elems, d := hcl.ExprList(a.Expr)
	var out []uint16
	for i, e := range v.AsValueSlice() {
		rng := a.Expr.Range()
		if !d.HasErrors() && len(elems) == v.LengthInt() {
			rng = elems[i].Range()
		}
		var n int64
		acc := !e.IsNull()
		if acc {
			bf := e.AsBigFloat()
			n, _ = bf.Int64()
			acc = bf.IsInt() && n >= 1 && n <= 65535
		}
		switch {
		case !acc:
			l.errorf(rng, "Invalid port", "ports must hold ports from 1 to 65535.")
		case slices.Contains(out, uint16(n)):
			l.errorf(rng, "Duplicate port", "Port %d is listed twice in ports. Remove one.", n)
		default:
			out = append(out, uint16(n))
		}
	}
	if len(out) == 0 && !l.diags.HasErrors() {
		l.errorf(a.Expr.Range(), "Firewall-mark service has no ports", "ports is empty: list the ports clients connect to, such as [80, 443].")
	}
	return out
}

// checkFamily refuses a realserver without a data-plane address of the service's family. IPVS
// could tunnel across families (an IPv4 VIP in IPv6 to the realserver, C6 of kernel-facts-2), but the
// realserver would have to decapsulate it on ip6tnl0 switched to IPv4 payloads, which Linux 6.1
// does not let netlink change; and an IPv6 VIP over IPv4 would need sit. tunplan does not do
// either.
func (l *loader) checkFamily(s *VirtualService, h Host, rng hcl.Range) {
	vips := s.AllVIPs()
	if len(vips) == 0 || !vips[0].IsValid() || len(h.Addresses) == 0 || h.AddressOf(vips[0]).IsValid() {
		return
	}
	fam, other := "IPv4", "IPv6"
	if vips[0].Is6() {
		fam, other = other, fam
	}
	l.errorf(rng, "Realserver has no "+fam+" address",
		"virtual_service %q has the %s VIP %s, but realserver %q has only the %s address %s (declared at %s). tunplan tunnels each family in itself (IPIP, or IPv6 in IPv6 to ip6tnl0): an %s VIP cannot reach an %s realserver, since the realserver's fallback tunnel device would have to be switched to the other family, which its kernel does not allow over netlink. Add the host's %s address, as address = [\"<IPv4>\", \"<IPv6>\"].",
		s.Name, fam, vips[0], h.Name, other, h.Address, h.DeclRange, fam, other, fam)
}

// validateCovers checks what identifies services: a VIP, port and protocol is one service's, and a
// firewall mark of one family is one service's. A VIP, port and protocol a firewall-mark service
// covers is not also a service of its own (IPVS would take its packets by the mark).
func (l *loader) validateCovers(p *Plan) {
	type cover struct {
		proto string
		vip   netip.Addr
		port  uint16
	}
	type mark struct {
		six  bool
		mark uint32
	}
	covered := map[cover]*VirtualService{}
	marks := map[mark]*VirtualService{}
	for i := range p.Services {
		s := &p.Services[i]
		if s.FWMark != 0 && len(s.VIPs) > 0 {
			k := mark{s.VIPs[0].Is6(), s.FWMark}
			if prev := marks[k]; prev != nil {
				l.errorf(s.ranges.fwmark, "Duplicate firewall mark", "fwmark %d is already the mark of virtual_service %q (%s): IPVS has one service per mark and family. Pick another mark.", s.FWMark, prev.Name, prev.DeclRange)
			}
			marks[k] = s
		}
		ports := s.Ports
		if s.FWMark == 0 {
			ports = []uint16{s.Port}
		}
		for _, vip := range s.AllVIPs() {
			for _, port := range ports {
				if !vip.IsValid() || port == 0 {
					continue
				}
				k := cover{s.Protocol, vip, port}
				prev := covered[k]
				covered[k] = s
				switch {
				case prev == nil:
				case prev.FWMark == 0 && s.FWMark == 0:
					l.errorf(s.DeclRange, "Duplicate virtual service", "%s/%s was previously declared at %s. A VIP, port and protocol identify one IPVS service: merge the two blocks or change the port.", s.Protocol, netip.AddrPortFrom(vip, port), prev.DeclRange)
				default:
					l.errorf(s.DeclRange, "Service covered twice", "%s/%s is covered by both virtual_service %q (%s) and %q: a packet to it can go to one IPVS service only, and a firewall mark takes it before its address does. Remove it from one of them.", s.Protocol, netip.AddrPortFrom(vip, port), prev.Name, prev.DeclRange, s.Name)
				}
			}
		}
	}
}
