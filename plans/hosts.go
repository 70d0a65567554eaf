package plans

import (
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/hashicorp/hcl/v2"

	"github.com/tunplan/tunplan/inventory/target"
	"github.com/tunplan/tunplan/modules/protocol"
)

var hostSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "role"}, {Name: "address"}, {Name: "vip_device"}, {Name: "ip_forward"}, {Name: "hide_vip"}, {Name: "tunnel_mss"}, {Name: "metrics_file"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "ssh"}},
}

// The MSS tunnel_mss accepts: IPv4's minimum (RFC 879), up to the largest a 65535-byte packet holds.
const (
	MinTunnelMSS = 536
	MaxTunnelMSS = 65495
)

// hostName is what a host may be called: it appears in messages, logs and generations on hosts.
var hostName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,62}$`)

// ValidHostName reports whether a plan accepts name as a host's name: an ASCII letter, then up to
// 62 letters, digits, '-' or '_'.
func ValidHostName(name string) bool { return hostName.MatchString(name) }

// host decodes one host block. Attributes in error keep their zero value.
func (l *loader) host(b *hcl.Block, defaults sshSpec) Host {
	h := Host{Name: b.Labels[0], DeclRange: b.DefRange, VIPDevice: protocol.TunnelDevice, IPForward: true, HideVIP: true, MetricsFile: protocol.DefaultMetrics}
	if !hostName.MatchString(h.Name) {
		l.errorf(b.LabelRanges[0], "Invalid host name", "%q is not a valid host name: use ASCII letters, digits, underscores and dashes, starting with a letter (at most 63).", h.Name)
	}
	c, d := b.Body.Content(hostSchema)
	l.diags = append(l.diags, d...)

	if a := c.Attributes["role"]; a == nil {
		l.errorf(b.DefRange, "Missing required attribute \"role\"", "Host %q needs role = \"director\", \"realserver\" or [\"director\", \"realserver\"].", h.Name)
	} else if roles, ranges, ok := l.strList(a); ok {
		if len(roles) == 0 {
			l.errorf(a.Expr.Range(), "Host has no role", "Host %q is neither a director nor a realserver: set role = \"director\" or \"realserver\", or remove the host.", h.Name)
		}
		for i, r := range roles {
			switch protocol.Role(r) {
			case protocol.Director, protocol.Realserver:
				if !h.Has(protocol.Role(r)) {
					h.Roles = append(h.Roles, protocol.Role(r))
				}
			default:
				l.errorf(ranges[i], "Unknown role", "Role %q is not known: a host is a \"director\" or a \"realserver\"%s.", r, suggest(r, []string{"director", "realserver"}))
			}
		}
		slices.Sort(h.Roles) // "director" < "realserver"
	}

	if a := c.Attributes["address"]; a == nil {
		l.errorf(b.DefRange, "Missing required attribute \"address\"", "Host %q needs address = \"<IP>\", or [\"<IPv4>\", \"<IPv6>\"]: its data-plane address (for a realserver, the RIP the directors tunnel to), one per family it serves.", h.Name)
	} else {
		h.Addresses = l.addresses(a)
		if len(h.Addresses) > 0 {
			h.Address = h.Addresses[0]
		}
	}

	if a := c.Attributes["vip_device"]; a != nil {
		if v, ok := l.str(a); ok {
			h.VIPDevice = v
			if !validDevice(v) {
				l.errorf(a.Expr.Range(), "Invalid device name", "%q is not a network device name (1 to 15 characters, no '/', ':' or spaces). The default is tunl0.", v)
			}
			if len(h.Roles) > 0 && !h.Has(protocol.Director) {
				l.errorf(a.NameRange, "Attribute applies to directors only", "vip_device is where a director puts the VIPs; host %q is not a director. Remove it (realservers always use tunl0).", h.Name)
			}
		}
	}
	if a := c.Attributes["ip_forward"]; a != nil {
		if v, ok := l.boolean(a); ok {
			h.IPForward = v
			if len(h.Roles) > 0 && !h.Has(protocol.Director) {
				l.errorf(a.NameRange, "Attribute applies to directors only", "ip_forward is a director option; host %q is not a director. Remove it.", h.Name)
			}
		}
	}

	if a := c.Attributes["metrics_file"]; a != nil {
		if v, ok := l.str(a); ok {
			h.MetricsFile = v
			if v != "" && (!strings.HasPrefix(v, "/") || !strings.HasSuffix(v, ".prom") || strings.ContainsFunc(v, unicode.IsControl)) {
				l.errorf(a.Expr.Range(), "Invalid metrics file", "metrics_file %q is not an absolute path ending in \".prom\" (node_exporter's textfile collector reads only *.prom files), such as %q. Set \"\" to write none.", v, protocol.DefaultMetrics)
			}
			if len(h.Roles) > 0 && !h.Has(protocol.Director) {
				l.errorf(a.NameRange, "Attribute applies to directors only", "metrics_file is where a director's health-check watcher writes its Prometheus text file; host %q is not a director. Remove it.", h.Name)
			}
		}
	}

	if a := c.Attributes["hide_vip"]; a != nil {
		if v, ok := l.boolean(a); ok {
			h.HideVIP = v
			if len(h.Roles) > 0 && !h.Has(protocol.Realserver) {
				l.errorf(a.NameRange, "Attribute applies to realservers only", "hide_vip keeps a realserver from answering ARP for the VIPs it holds; host %q is not a realserver. Remove it.", h.Name)
			}
		}
	}

	if a := c.Attributes["tunnel_mss"]; a != nil {
		if v, ok := l.intIn(a, MinTunnelMSS, MaxTunnelMSS, "tunnel_mss", "an MSS from 536 to 65495 bytes: the path MTU through the tunnel less 60 (1440 on a 1500-byte path)"); ok {
			h.TunnelMSS = uint32(v)
			if len(h.Roles) > 0 && !h.Has(protocol.Realserver) {
				l.errorf(a.NameRange, "Attribute applies to realservers only", "tunnel_mss is the MSS a realserver offers the clients it answers directly; host %q is not a realserver. Remove it.", h.Name)
			}
		}
	}

	s := defaults
	var sshBlock *hcl.Block
	for _, sb := range c.Blocks.OfType("ssh") {
		if sshBlock != nil {
			l.errorf(sb.DefRange, "Duplicate ssh block", "Host %q already has an ssh block at %s. Merge them.", h.Name, sshBlock.DefRange)
			continue
		}
		sshBlock = sb
		s = mergeSSH(defaults, l.sshSpec(sb, hostSSHSchema))
	}
	h.SSH = target.Target{Name: h.Name, Address: h.Address.String(), Port: 22, User: "root", KnownHosts: target.ExpandHome("~/.ssh/known_hosts")}
	if !h.Address.IsValid() {
		h.SSH.Address = ""
	}
	if s.host != nil {
		h.SSH.Address = *s.host
	}
	if s.port != nil {
		h.SSH.Port = *s.port
	}
	if s.user != nil {
		h.SSH.User = *s.user
	}
	if s.identitySet {
		h.SSH.IdentityFile = s.identity
	}
	if s.knownHosts != nil {
		h.SSH.KnownHosts = *s.knownHosts
		h.ranges.knownHosts = s.knownHostsRange
	}
	if s.sudo != nil {
		h.SSH.Sudo = *s.sudo
	}
	if s.jump != nil {
		user, addr, port, _ := ParseJump(*s.jump)
		if user == "" {
			user = h.SSH.User
		}
		h.SSH.Jump = &target.Target{Name: h.Name + " (jump " + *s.jump + ")", Address: addr, Port: port, User: user,
			IdentityFile: h.SSH.IdentityFile, KnownHosts: h.SSH.KnownHosts}
	}
	return h
}

// addresses decodes a host's address attribute: one address, or a list of one IPv4 and one IPv6
// address. Addresses in error are left out.
func (l *loader) addresses(a *hcl.Attribute) []netip.Addr {
	list, ranges, ok := l.strList(a)
	if !ok {
		return nil
	}
	if len(list) == 0 || len(list) > 2 {
		l.errorf(a.Expr.Range(), "Invalid address list", "address must be one address, or a list of one IPv4 and one IPv6 address (the RIPs of each family); it has %d.", len(list))
		return nil
	}
	var out []netip.Addr
	for i, s := range list {
		addr, ok := l.ip(s, ranges[i], "address")
		if !ok {
			continue
		}
		if len(out) == 1 && out[0].Is4() == addr.Is4() {
			l.errorf(ranges[i], "Two addresses of one family", "address %s is of the same family as %s: a host has one data-plane address per family, the one the directors tunnel to. Keep one.", addr, out[0])
			continue
		}
		out = append(out, addr)
	}
	return out
}

// AddressOf is the host's data-plane address of ip's family, or the zero Addr when it has none.
func (h *Host) AddressOf(ip netip.Addr) netip.Addr {
	for _, a := range h.Addresses {
		if a.Is4() == ip.Is4() {
			return a
		}
	}
	return netip.Addr{}
}

func validDevice(s string) bool {
	return s != "" && len(s) <= 15 && s != "." && s != ".." && !strings.ContainsAny(s, "/: \t\n")
}
