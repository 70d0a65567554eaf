package plans

import (
	"cmp"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/tunplan/tunplan/inventory/target"
	"github.com/tunplan/tunplan/modules/protocol"
)

// Schedulers are the IPVS schedulers a virtual_service may name (ip_vs_<name> kernel modules).
var Schedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf"}

// Protocols are the protocols a virtual_service may name.
var Protocols = []string{"tcp", "udp"}

// Plan is a loaded and validated plan.
type Plan struct {
	Hosts    []Host           // sorted by Name; after Limit, only the selected hosts
	Services []VirtualService // in declaration order; always all of them

	all map[string]Host // every host of the plan, also those Limit left out
}

// Host is one host block.
type Host struct {
	Name      string
	Roles     protocol.Roles // director before realserver, no duplicates
	Address   netip.Addr     // the first of Addresses: the default SSH address
	Addresses []netip.Addr   // data-plane addresses, at most one per family; for a realserver the RIPs the directors tunnel to
	SSH       target.Target
	VIPDevice string // director: device that carries the VIPs (default tunl0)
	IPForward bool   // director: set net.ipv4.ip_forward=1 (default true)
	HideVIP   bool   // realserver: set arp_ignore=1 and arp_announce=2, so it never answers ARP for a VIP (default true)
	TunnelMSS uint32 // realserver: the advmss of its IPv4 default routes, the MSS it offers clients; 0 leaves it alone
	// MetricsFile is where a director that checks services writes its Prometheus text file
	// (default protocol.DefaultMetrics); "" writes none.
	MetricsFile string
	DeclRange   hcl.Range

	ranges struct {
		knownHosts hcl.Range // the known_hosts attribute SSH.KnownHosts comes from; zero when defaulted
	}
}

// Has reports whether the host has role r.
func (h *Host) Has(r protocol.Role) bool { return h.Roles.Has(r) }

// Target is how to reach the host over SSH.
func (h *Host) Target() target.Target { return h.SSH }

// VirtualService is one virtual_service block: an IPVS service on its directors, tunnelled to its
// realservers.
type VirtualService struct {
	Name     string
	VIP      netip.Addr // IPv4 or IPv6; zero for a firewall-mark service
	Protocol string     // "tcp" or "udp"
	Port     uint16     // zero for a firewall-mark service
	// FWMark makes the service a firewall-mark service (ipvsadm -A -f): its directors mark the
	// packets of Protocol to each of VIPs and Ports, and IPVS takes them by the mark, so one client's
	// connections to every port stick to one realserver under persistence.
	FWMark      uint32
	VIPs        []netip.Addr // a firewall-mark service's VIPs, all of one family
	Ports       []uint16     // a firewall-mark service's ports
	Scheduler   string
	Persistence uint32 // seconds; 0 = not persistent
	Directors   []string
	Realservers []RealserverRef
	// Tunnel is how the directors wrap the packets to the realservers: IPIP (the zero value), GUE
	// to a UDP port, or GRE, with their checksum flags (the tunnel attribute, gue and gre blocks).
	Tunnel protocol.Tunnel
	// Probe is what tunplan verify sends to each destination of a UDP service and expects back (its
	// probe block); nil: none, its destinations are not probed. Not part of any host's state.
	Probe *protocol.Payload
	// Check is how the directors' watcher checks each destination (its health_check block); nil:
	// none, or type = "none".
	Check     *HealthCheck
	DeclRange hcl.Range

	ranges struct {
		vip         hcl.Range // vip, or a firewall-mark service's vips
		fwmark      hcl.Range
		guePort     hcl.Range   // the gue block's port attribute
		directors   []hcl.Range // one per Directors entry
		realservers []hcl.Range // the label of each Realservers entry
	}
}

// AllVIPs is the service's VIPs: its vip, or a firewall-mark service's vips.
func (s *VirtualService) AllVIPs() []netip.Addr {
	if s.FWMark != 0 {
		return s.VIPs
	}
	return []netip.Addr{s.VIP}
}

// RealserverRef is one realserver block of a virtual_service.
type RealserverRef struct {
	Host      string
	Weight    uint32
	DeclRange hcl.Range
}

// Limit restricts the plan to the selected hosts. Each of names is a comma-separated list of
// selectors: a host name, a shell glob of host names (shanghai-*, lvs0[12]; path.Match syntax) or a
// role (role:director, role:realserver). The hosts stay sorted by name, each once. The desired state
// of a selected host does not change: services still name every realserver. No names select every
// host. An unknown name, a glob or role that selects no host, an invalid glob and an unknown role
// are errors.
func (p *Plan) Limit(names []string) (*Plan, hcl.Diagnostics) {
	var want []string
	for _, n := range names {
		for _, s := range strings.Split(n, ",") {
			if s = strings.TrimSpace(s); s != "" {
				want = append(want, s)
			}
		}
	}
	if len(want) == 0 {
		return p, nil
	}
	var diags hcl.Diagnostics
	fail := func(summary, detail string, args ...any) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(detail, args...)})
	}
	known := slices.Sorted(mapKeys(p.all))
	roles := []string{string(protocol.Director), string(protocol.Realserver)}
	selected := map[string]bool{}
	for _, sel := range want {
		found := false
		switch role, isRole := strings.CutPrefix(sel, "role:"); {
		case isRole:
			role = strings.TrimSpace(role)
			if !slices.Contains(roles, role) {
				fail(fmt.Sprintf("Unknown role %q", role), "%q selects the hosts of a role, but %q is not one%s: the roles are %q and %q (select them with role:%s or role:%s).",
					sel, role, suggest(role, roles), roles[0], roles[1], roles[0], roles[1])
				continue
			}
			for _, h := range p.all {
				if h.Has(protocol.Role(role)) {
					selected[h.Name], found = true, true
				}
			}
			if !found {
				fail(fmt.Sprintf("No host has role %q", role), "%q selects no host: no host of the plan is a %s. Its hosts are: %s.", sel, role, andList(known, 10))
			}
		case strings.ContainsAny(sel, `*?[\`):
			if _, err := path.Match(sel, ""); err != nil {
				fail(fmt.Sprintf("Invalid host pattern %q", sel), "%q is not a valid pattern (%v): use * for any characters, ? for one character, [abc] or [a-z] for one of a set, as in shanghai-* or lvs0[12].", sel, err)
				continue
			}
			for _, h := range known {
				if ok, _ := path.Match(sel, h); ok {
					selected[h], found = true, true
				}
			}
			if !found {
				fail(fmt.Sprintf("No host matches %q", sel), "The pattern %q selects none of the plan's hosts: %s.", sel, andList(known, 10))
			}
		default:
			if _, ok := p.all[sel]; !ok {
				fail(fmt.Sprintf("Unknown host %q", sel), "The plan has no host %q%s. Its hosts are: %s.", sel, suggest(sel, known), strings.Join(known, ", "))
				continue
			}
			selected[sel] = true
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}
	q := *p
	q.Hosts = nil
	for _, h := range p.Hosts {
		if selected[h.Name] {
			q.Hosts = append(q.Hosts, h)
		}
	}
	return &q, nil
}

// Realserver sysctls: accept decapsulated packets whose source is not routed via the tunnel device
// (the effective rp_filter is the max of all and the device), and (hide_vip) never answer ARP for
// the VIP.
var (
	realserverSysctls = []protocol.Sysctl{
		{Key: "net.ipv4.conf.all.rp_filter", Value: "0"},
	}
	hideVIPSysctls = []protocol.Sysctl{
		{Key: "net.ipv4.conf.all.arp_announce", Value: "2"},
		{Key: "net.ipv4.conf.all.arp_ignore", Value: "1"},
	}
)

// receiver is what a realserver needs to take a tunnel's packets: the module that decapsulates
// them and the device they arrive on, which carries the VIPs. GUE is decapsulated by a fou listener
// and handed to IPIP: tunl0 receives it. IPv6 VIPs come in ip6ip6, to ip6tnl0.
func receiver(t protocol.TunnelType, vip netip.Addr) (module, device string) {
	switch {
	case vip.Is6():
		return "ip6_tunnel", protocol.Tunnel6Device
	case t == protocol.TunnelGRE:
		return "ip_gre", protocol.GREDevice
	}
	return "ipip", protocol.TunnelDevice
}

// markModule is the kernel module of the directors' mark rules (nftables).
const markModule = "nf_tables"

// Desired is the state every selected host must have, by host name. Every selected host has an
// entry (an empty State when the plan gives it nothing to carry). All lists are sorted.
func (p *Plan) Desired() map[string]protocol.State {
	type acc struct {
		modules  map[string]bool
		sysctls  map[string]string
		links    map[string]map[netip.Prefix]bool
		services []protocol.Service
		marks    []protocol.Mark
		checks   []protocol.HealthCheck
		fou      map[uint16]bool // GUE ports
		mss      uint32          // a realserver's tunnel_mss
	}
	accs := map[string]*acc{}
	get := func(name string) *acc {
		a := accs[name]
		if a == nil {
			a = &acc{modules: map[string]bool{}, sysctls: map[string]string{}, links: map[string]map[netip.Prefix]bool{}, fou: map[uint16]bool{}}
			accs[name] = a
		}
		return a
	}
	addAddrs := func(a *acc, dev string, vips []netip.Addr) {
		if a.links[dev] == nil {
			a.links[dev] = map[netip.Prefix]bool{}
		}
		for _, vip := range vips {
			a.links[dev][netip.PrefixFrom(vip, vip.BitLen())] = true
		}
	}
	for _, h := range p.all {
		if h.Has(protocol.Director) {
			a := get(h.Name)
			a.modules["ip_vs"] = true
			if h.IPForward {
				a.sysctls["net.ipv4.ip_forward"] = "1"
			}
		}
	}
	marks := map[checkPair]uint32{}
	for i, pair := range p.checkPairs() {
		marks[pair] = protocol.ProbeMarkBase + uint32(i)
	}
	for si, s := range p.Services {
		vips := s.AllVIPs()
		family := vips[0]
		svc := s.kernelService()
		module, device := receiver(s.Tunnel.Type, family)
		hostOf := map[netip.Addr]string{} // destination → realserver
		for _, r := range s.Realservers {
			rh := p.all[r.Host]
			hostOf[rh.AddressOf(family)] = rh.Name
			svc.Destinations = append(svc.Destinations, protocol.Destination{Address: rh.AddressOf(family), Port: svc.Port, Weight: r.Weight, Forward: protocol.ForwardTunnel, Tunnel: s.Tunnel})
			a := get(rh.Name)
			a.modules[module] = true
			if family.Is4() {
				for _, sc := range realserverSysctls {
					a.sysctls[sc.Key] = sc.Value
				}
				a.sysctls["net.ipv4.conf."+device+".rp_filter"] = "0"
				if rh.HideVIP {
					for _, sc := range hideVIPSysctls {
						a.sysctls[sc.Key] = sc.Value
					}
				}
			}
			if s.Tunnel.Type == protocol.TunnelGUE {
				a.modules["fou"] = true
				a.fou[s.Tunnel.Port] = true
			}
			a.mss = rh.TunnelMSS
			addAddrs(a, device, vips)
		}
		slices.SortFunc(svc.Destinations, func(x, y protocol.Destination) int {
			return cmp.Or(x.Address.Compare(y.Address), cmp.Compare(x.Port, y.Port))
		})
		check, probes := s.desiredCheck(svc, family, func(dst protocol.Destination) uint32 { return marks[checkPair{si, hostOf[dst.Address]}] })
		for _, d := range s.Directors {
			dh := p.all[d]
			a := get(dh.Name)
			a.modules["ip_vs_"+s.Scheduler] = true
			if check != nil {
				c := *check
				c.Source = dh.AddressOf(family)
				c.Destinations = slices.Clone(check.Destinations)
				a.checks = append(a.checks, c)
				for _, ps := range probes {
					ps.Destinations = slices.Clone(ps.Destinations)
					a.services = append(a.services, ps)
				}
				a.modules["ip_vs_rr"] = true
				if family.Is4() { // IPv6 has no accept_local or rp_filter: a reply from a local address gets in
					for _, sc := range checkSysctls {
						a.sysctls[sc.Key] = sc.Value
					}
				}
				if s.Persistence > 0 {
					a.sysctls[quiescentTemplates.Key] = quiescentTemplates.Value
				}
			}
			dev := dh.VIPDevice
			if dev == protocol.TunnelDevice && family.Is6() {
				dev = protocol.Tunnel6Device
			}
			switch dev {
			case protocol.TunnelDevice:
				a.modules["ipip"] = true
			case protocol.Tunnel6Device:
				a.modules["ip6_tunnel"] = true
			}
			addAddrs(a, dev, vips)
			if s.FWMark != 0 {
				a.modules[markModule] = true
				for _, vip := range vips {
					for _, port := range s.Ports {
						a.marks = append(a.marks, protocol.Mark{Protocol: s.Protocol, Address: vip, Port: port, Mark: s.FWMark})
					}
				}
			}
			c := svc
			c.Destinations = slices.Clone(svc.Destinations)
			a.services = append(a.services, c)
		}
	}

	out := make(map[string]protocol.State, len(p.Hosts))
	for _, h := range p.Hosts {
		var st protocol.State
		a := accs[h.Name]
		if a == nil {
			out[h.Name] = st
			continue
		}
		for m := range a.modules {
			st.Modules = append(st.Modules, m)
		}
		slices.Sort(st.Modules)
		for k, v := range a.sysctls {
			st.Sysctls = append(st.Sysctls, protocol.Sysctl{Key: k, Value: v})
		}
		slices.SortFunc(st.Sysctls, func(x, y protocol.Sysctl) int { return cmp.Compare(x.Key, y.Key) })
		for dev, addrs := range a.links {
			l := protocol.Link{Name: dev}
			for pfx := range addrs {
				l.Addresses = append(l.Addresses, pfx)
			}
			slices.SortFunc(l.Addresses, func(x, y netip.Prefix) int {
				return cmp.Or(x.Addr().Compare(y.Addr()), cmp.Compare(x.Bits(), y.Bits()))
			})
			st.Links = append(st.Links, l)
		}
		slices.SortFunc(st.Links, func(x, y protocol.Link) int { return cmp.Compare(x.Name, y.Name) })
		for port := range a.fou {
			st.Fou = append(st.Fou, protocol.FouPort{Port: port, Type: protocol.FouGUE})
		}
		slices.SortFunc(st.Fou, func(x, y protocol.FouPort) int { return cmp.Compare(x.Port, y.Port) })
		if a.mss != 0 {
			st.Routes = []protocol.RouteMSS{{Dst: protocol.DefaultRoute, AdvMSS: a.mss}}
		}
		st.Services = a.services
		slices.SortFunc(st.Services, func(x, y protocol.Service) int {
			return cmp.Or(cmp.Compare(x.Protocol, y.Protocol), x.Address.Compare(y.Address), cmp.Compare(x.Port, y.Port), cmp.Compare(x.FWMark, y.FWMark))
		})
		st.Marks = a.marks
		slices.SortFunc(st.Marks, func(x, y protocol.Mark) int {
			return cmp.Or(cmp.Compare(x.Protocol, y.Protocol), x.Address.Compare(y.Address), cmp.Compare(x.Port, y.Port))
		})
		st.Checks = a.checks
		if len(st.Checks) > 0 {
			st.Metrics = h.MetricsFile
		}
		slices.SortFunc(st.Checks, func(x, y protocol.HealthCheck) int { return cmp.Compare(x.Service.String(), y.Service.String()) })
		out[h.Name] = st
	}
	return out
}

// kernelService is the IPVS service of s, without destinations: a firewall-mark service's address
// is the unspecified address of its VIPs' family.
func (s *VirtualService) kernelService() protocol.Service {
	svc := protocol.Service{Protocol: s.Protocol, Address: s.VIP, Port: s.Port, Scheduler: s.Scheduler, Persistence: s.Persistence}
	if s.FWMark != 0 {
		svc.Protocol, svc.Address, svc.FWMark = "", netip.IPv4Unspecified(), s.FWMark
		if s.AllVIPs()[0].Is6() {
			svc.Address = netip.IPv6Unspecified()
		}
	}
	return svc
}

// Probes are the probes of the UDP services whose plan has a probe block, by service: what tunplan
// verify's directors send to each of their destinations, and the bytes the replies must start with.
// They are not part of any host's desired state: nothing on a host changes with them.
func (p *Plan) Probes() map[protocol.Key]protocol.Payload {
	out := map[protocol.Key]protocol.Payload{}
	for _, s := range p.Services {
		if s.Probe != nil {
			out[protocol.Key{Protocol: s.Protocol, Address: s.VIP, Port: s.Port}] = *s.Probe
		}
	}
	return out
}

// suggest is ` (did you mean "x"?)` when a known name is close to n, else "".
func suggest(n string, known []string) string {
	best := closest(n, known)
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// closest is the known name nearest to n, if at most two edits away (the first of equals), else "".
func closest(n string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(n, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
