// Package imports makes a plan of the LVS-TUN set-up hosts already have, for tunplan import: from
// what the helper's inspect read on each host (protocol.Inventory: a director's IPVS services, every
// host's addresses and the addresses on its tunnel device) it builds the hosts, with their roles and
// data-plane addresses, and one virtual_service per service, and writes them as formatted HCL that
// plans.Load accepts.
//
// It reaches no host and prints nothing: the command reads the hosts, and shows the notes and errors
// Build returns.
package imports

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/tunplan/tunplan/modules/protocol"
	"github.com/tunplan/tunplan/plans"
)

// Host is a host the command read.
type Host struct {
	Name       string              // its name in the plan: plans.ValidHostName, unique
	SSHAddress string              // the IP address or DNS name it was reached at
	Director   bool                // given as a director: its IPVS services are imported
	Inventory  *protocol.Inventory // what inspect read there
}

// Plan is what Build makes of the hosts' inventories. HCL writes it; Check loads it back.
type Plan struct {
	hosts    []*host // in the plan's order: directors, realservers as given, then made ones
	services []*service
	skipped  []string // "lvs01: fwmark 3: …", also written into the plan as a comment
	ssh      SSH
}

// host is one host of the plan: one given to Build, or one made for a destination that no given
// host has.
type host struct {
	Host              // as given; a made host has no Inventory
	given        bool // given to Build (and read)
	roles        protocol.Roles
	address      netip.Addr // the data-plane address
	ipForwardOff bool       // director: ip_forward = false (its forwarding is off; keep it so)
	hideVIPOff   bool       // realserver: hide_vip = false (its ARP settings are not the plan's; keep them so)
}

// service is one virtual_service of the plan.
type service struct {
	name      string
	svc       protocol.Service
	directors []string
	rs        []string // the host of each destination, in svc.Destinations' order
}

// Build makes the plan from the hosts' inventories; ssh is how they were reached, which the plan's
// ssh block says. The notes are what the operator should know (services and hosts left out, VIPs
// missing on the tunnel device), also when Build fails; an error is a set-up the plan cannot
// describe.
func Build(hosts []Host, ssh SSH) (*Plan, []string, error) {
	b := &builder{byName: map[string]*host{}, made: map[netip.Addr]*host{}, plan: &Plan{ssh: ssh}}
	for _, h := range hosts {
		if h.Inventory == nil || b.byName[h.Name] != nil {
			return nil, nil, fmt.Errorf("host %q: each host needs a unique name and its inventory", h.Name)
		}
		if !plans.ValidHostName(h.Name) {
			return nil, nil, fmt.Errorf("host %q: not a valid host name: a plan names a host with ASCII letters, digits, underscores and dashes, starting with a letter (at most 63)", h.Name)
		}
		ih := &host{Host: h, given: true}
		b.hosts = append(b.hosts, ih)
		b.byName[h.Name] = ih
	}
	if err := b.build(); err != nil {
		return nil, b.notes, err
	}
	return b.plan, b.notes, nil
}

// builder holds what Build has found so far.
type builder struct {
	hosts     []*host // given to Build, in that order
	byName    map[string]*host
	made      map[netip.Addr]*host // hosts made for destinations no given host has
	madeHosts []*host
	notes     []string
	plan      *Plan
}

func (b *builder) note(format string, args ...any) {
	b.notes = append(b.notes, fmt.Sprintf(format, args...))
}

// skip leaves out what host has that the plan cannot describe, and says why.
func (b *builder) skip(host, why string) {
	b.plan.skipped = append(b.plan.skipped, host+": "+why)
	b.note("%s: skipped %s", host, why)
}

func (b *builder) build() error {
	services, order, err := b.mergeServices()
	if err != nil {
		return err
	}
	keys := b.apartFromHosts(services, order)
	if len(keys) == 0 {
		return errors.New("nothing to import: no director carries an IPv4 TCP or UDP service whose destinations all forward by tunnel (the services left out are listed above)")
	}
	slices.SortFunc(keys, func(x, y protocol.Key) int {
		return cmp.Or(x.Address.Compare(y.Address), cmp.Compare(x.Port, y.Port), cmp.Compare(x.Protocol, y.Protocol))
	})
	names := serviceNames(keys)
	vips := map[netip.Addr]bool{}
	for _, k := range keys {
		m := services[k]
		vips[k.Address] = true
		s := &service{name: names[k], svc: m.svc, directors: m.directors}
		for _, d := range m.svc.Destinations {
			h, err := b.realserver(d.Address)
			if err != nil {
				return fmt.Errorf("service %s: %w", k, err)
			}
			s.rs = append(s.rs, h.Name)
		}
		for _, d := range m.directors {
			b.byName[d].addRole(protocol.Director)
		}
		b.plan.services = append(b.plan.services, s)
	}
	if err := b.directorAddresses(vips); err != nil {
		return err
	}
	for _, h := range b.hosts {
		switch {
		case len(h.roles) == 0 && h.Director:
			b.note("%s: left out of the plan: it carries no service that could be imported", h.Name)
		case len(h.roles) == 0:
			b.note("%s: left out of the plan: no imported service tunnels to it (none of its addresses %v is a destination)", h.Name, h.Inventory.Addresses)
		default:
			b.plan.hosts = append(b.plan.hosts, h)
		}
	}
	b.plan.hosts = append(b.plan.hosts, b.madeHosts...)
	b.tunnelDrift()
	return nil
}

// tunnelDrift notes the VIPs the hosts read lack on tunl0: drift that applying the plan fixes.
func (b *builder) tunnelDrift() {
	for _, s := range b.plan.services {
		vip := netip.PrefixFrom(s.svc.Address, 32)
		need := slices.Clone(s.directors)
		for _, r := range s.rs {
			if !slices.Contains(need, r) {
				need = append(need, r)
			}
		}
		for _, n := range need {
			if h := b.byName[n]; h.given && !slices.Contains(h.Inventory.TunnelAddresses, vip) {
				b.note("%s: has no %s on %s, which virtual_service %q needs there: applying the plan adds it", n, vip, protocol.TunnelDevice, s.name)
			}
		}
	}
}

// addRole gives h role r (roles stay sorted: director before realserver).
func (h *host) addRole(r protocol.Role) {
	if !h.roles.Has(r) {
		h.roles = append(h.roles, r)
		slices.Sort(h.roles)
	}
}
