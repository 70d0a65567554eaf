package plans

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/tunplan/tunplan/modules/protocol"
)

// validate checks what spans blocks: host names the services use, addresses shared between hosts
// and VIPs, services declared twice. Values that failed to decode are zero and skipped.
func (l *loader) validate(p *Plan) {
	names := slices.Sorted(mapKeys(p.all))

	// Data addresses are unique: a destination is found by address.
	byAddr := map[netip.Addr]Host{}
	for _, b := range p.declOrderHosts() {
		for _, addr := range b.Addresses {
			if prev, dup := byAddr[addr]; dup {
				l.errorf(b.DeclRange, "Duplicate host address", "Host %q has address %s, already the address of host %q (declared at %s). Every host needs its own data-plane address.", b.Name, addr, prev.Name, prev.DeclRange)
				continue
			}
			byAddr[addr] = b
		}
	}

	usedAs := map[string]map[protocol.Role]bool{}
	for _, s := range p.Services {
		for _, vip := range s.AllVIPs() {
			if !vip.IsValid() {
				continue
			}
			for _, h := range p.declOrderHosts() {
				if slices.Contains(h.Addresses, vip) {
					l.errorf(s.ranges.vip, "VIP is a host address", "VIP %s is the data-plane address of host %q (%s). The VIP must be an address of its own: tunplan puts it on the tunnel device of every realserver and on the directors. Pick an unused address.", vip, h.Name, h.DeclRange)
				} else if a, err := netip.ParseAddr(h.SSH.Address); err == nil && a == vip {
					l.errorf(s.ranges.vip, "VIP is a host address", "VIP %s is the SSH address of host %q (%s): putting it on a tunnel device would cut tunplan off that host. Pick an unused address for the VIP.", vip, h.Name, h.DeclRange)
				}
			}
		}
		check := func(name string, rng hcl.Range, role protocol.Role, list string) {
			h, ok := p.all[name]
			switch {
			case !ok:
				l.errorf(rng, "Unknown host", "virtual_service %q names %s %q, but there is no host %q%s. Declare it with host %q { role = %q … }, or fix the name.", s.Name, role, name, name, suggest(name, names), name, role)
			case len(h.Roles) > 0 && !h.Has(role):
				l.errorf(rng, fmt.Sprintf("Host is not a %s", role), "virtual_service %q lists host %q in %s, but its role is %q (declared at %s). Add %q to its role, or remove it from this service.", s.Name, name, list, h.Roles, h.DeclRange, role)
			default:
				if usedAs[name] == nil {
					usedAs[name] = map[protocol.Role]bool{}
				}
				usedAs[name][role] = true
			}
		}
		for i, d := range s.Directors {
			check(d, s.ranges.directors[i], protocol.Director, "directors")
		}
		for i, r := range s.Realservers {
			check(r.Host, s.ranges.realservers[i], protocol.Realserver, "its realserver blocks")
			l.checkFamily(&s, p.all[r.Host], s.ranges.realservers[i])
		}
	}

	l.validateCovers(p)
	l.validateTunnels(p)
	l.validateChecks(p)

	if l.diags.HasErrors() {
		return // an unused host is likely a consequence of the errors
	}
	for _, h := range p.declOrderHosts() {
		for _, r := range h.Roles {
			if !usedAs[h.Name][r] {
				l.warnf(h.DeclRange, "Host is not used", "Host %q is a %s but no virtual_service uses it as one: tunplan will remove what it manages there (LVS services, VIPs) and leave it bare. Add it to a service, or remove the role.", h.Name, r)
			}
		}
	}
}

// declOrderHosts is the hosts in declaration order (diagnostics then read top to bottom).
func (p *Plan) declOrderHosts() []Host {
	hs := make([]Host, 0, len(p.all))
	for _, h := range p.all {
		hs = append(hs, h)
	}
	slices.SortFunc(hs, func(a, b Host) int {
		if a.DeclRange.Filename != b.DeclRange.Filename {
			if a.DeclRange.Filename < b.DeclRange.Filename {
				return -1
			}
			return 1
		}
		if a.DeclRange.Start.Byte != b.DeclRange.Start.Byte {
			return a.DeclRange.Start.Byte - b.DeclRange.Start.Byte
		}
		return strings.Compare(a.Name, b.Name) // hosts made by one dynamic block
	})
	return hs
}
