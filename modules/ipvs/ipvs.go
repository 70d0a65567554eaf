// Package ipvs reads and reconciles IPVS virtual services and their destinations over generic netlink.
package ipvs

// IPVS writes are encoded here (wire.go) and sent in batches (client.go): one sendmsg carries up to
// a thousand requests, the kernel answers only failures and the last request's acknowledgement, so
// loading 10,000 destinations costs a few system calls instead of 10,000 round trips. The attributes
// are those of github.com/cloudflare/ipvs, whose types this package still uses.

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	cipvs "github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"

	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/protocol"
)

// Kernel is the IPVS boundary: reads of the table, and writes that are queued and answered later.
// Client implements it over generic netlink.
type Kernel interface {
	// Services lists the virtual services; an empty table is an empty list.
	Services() ([]cipvs.Service, error)
	// Destinations lists the destinations of each service: out[i] are svcs[i]'s. With tunnels, each
	// destination's tunnel type, port and flags are read too, which only netlink carries (not
	// /proc/net/ip_vs); without, they may read as IPIP.
	Destinations(svcs []cipvs.Service, tunnels bool) ([][]cipvs.Destination, error)
	// Counters lists the destinations of each service with their connection counts and totals
	// (the rates are not read): out[i] are svcs[i]'s. Only status reads them, never the apply path.
	Counters(svcs []cipvs.Service) ([][]cipvs.DestinationExtended, error)
	// Queue sends or queues one write. An error it returns is an earlier write's (or this
	// one's) failure, as Flush would report it.
	Queue(Write) error
	// Flush waits until every queued write has been answered and returns the first failure,
	// as "ipvs: <write's Name>: <error>".
	Flush() error
}

// Write is one IPVS change: a command on a service, or on one of its destinations.
type Write struct {
	Cmd     Cmd
	Service cipvs.Service
	Dest    cipvs.Destination // for NewDest, SetDest, DelDest
	Name    string            // for errors: "create tcp/198.18.48.180:80 -> 198.18.1.183:80"
}

var (
	protocols = map[string]cipvs.Protocol{"tcp": cipvs.TCP, "udp": cipvs.UDP}
	forwards  = map[cipvs.ForwardType]string{cipvs.Tunnel: protocol.ForwardTunnel, cipvs.DirectRoute: "route", cipvs.Masquerade: "masq", cipvs.Local: "local"}
)

// Facts reads the IPVS table once (one service dump, one destination dump per service in scope)
// and returns the services in scope with their destinations, sorted. A nil scope reads them all.
// tunnels asks for the destinations' tunnels (GUE, GRE) to be read exactly, which a large table's
// fast read (/proc/net/ip_vs) cannot: the engine sets it when a tunnel other than IPIP is wanted or
// owned.
func Facts(k Kernel, scope map[protocol.Key]bool, tunnels bool) ([]protocol.Service, error) {
	svcs, err := k.Services()
	if err != nil {
		return nil, fmt.Errorf("ipvs: %w", err)
	}
	var out []protocol.Service
	var ks []cipvs.Service
	for _, se := range svcs {
		s, ok := fromKernel(se)
		if !ok || (scope != nil && !scope[s.Key()]) {
			continue
		}
		out = append(out, s)
		ks = append(ks, se)
	}
	if len(ks) == 0 {
		return nil, nil
	}
	dests, err := k.Destinations(ks, tunnels)
	if err != nil {
		return nil, fmt.Errorf("ipvs: %w", err)
	}
	for i := range out {
		out[i].Destinations = []protocol.Destination{}
		for _, de := range dests[i] {
			fwd, ok := forwards[de.FwdMethod]
			if !ok {
				fwd = fmt.Sprintf("method-%d", de.FwdMethod)
			}
			d := protocol.Destination{Address: de.Address, Port: de.Port, Weight: de.Weight, Forward: fwd}
			if de.FwdMethod == cipvs.Tunnel {
				if d.Tunnel, err = tunnelOf(de); err != nil {
					return nil, fmt.Errorf("ipvs: %s -> %s: %w", out[i].Key(), netip.AddrPortFrom(de.Address, de.Port), err)
				}
			}
			out[i].Destinations = append(out[i].Destinations, d)
		}
		sortDestinations(out[i].Destinations)
	}
	keys := make(map[protocol.Key]string, len(out))
	for _, s := range out {
		keys[s.Key()] = s.Key().String()
	}
	sort.Slice(out, func(i, j int) bool { return keys[out[i].Key()] < keys[out[j].Key()] })
	return out, nil
}

// fromKernel is a kernel service as tunplan reads it: TCP or UDP on an IPv4 or IPv6 VIP, or an
// IPv4 or IPv6 firewall-mark service, whose Address is the unspecified address of its family. Any
// other service (SCTP, an unknown address family) is not tunplan's: ok is false.
func fromKernel(ks cipvs.Service) (s protocol.Service, ok bool) {
	s = protocol.Service{Scheduler: ks.Scheduler}
	if ks.FWMark != 0 {
		switch ks.Family {
		case cipvs.INET:
			s.Address = netip.IPv4Unspecified()
		case cipvs.INET6:
			s.Address = netip.IPv6Unspecified()
		default:
			return protocol.Service{}, false
		}
		s.FWMark = ks.FWMark
	} else {
		for name, p := range protocols {
			if p == ks.Protocol {
				s.Protocol = name
			}
		}
		if s.Protocol == "" || !ks.Address.IsValid() || familyOf(ks.Address) != ks.Family {
			return protocol.Service{}, false
		}
		s.Address, s.Port = ks.Address, ks.Port
	}
	if ks.Flags&cipvs.ServicePersistent != 0 {
		s.Persistence = ks.Timeout
	}
	return s, true
}

// familyOf is the IPVS address family of an address: IPv4 or IPv6.
func familyOf(a netip.Addr) cipvs.AddressFamily {
	if a.Is4() {
		return cipvs.INET
	}
	return cipvs.INET6
}

// toKernel is the service as tunplan writes it, with the netmask ipvsadm gives it (that of a
// single address: 255.255.255.255 for IPv4, a prefix length of 128 for IPv6). A firewall-mark
// service is named by its family and mark alone: its Address (the unspecified address) only
// gives the family.
func toKernel(s protocol.Service) cipvs.Service {
	ks := cipvs.Service{Family: familyOf(s.Address), Scheduler: s.Scheduler, Netmask: netmask.MaskFrom(32, 32)}
	if !s.Address.Is4() {
		ks.Netmask = netmask.MaskFrom(128, 128)
	}
	if s.FWMark != 0 {
		ks.FWMark = s.FWMark
	} else {
		ks.Address, ks.Port, ks.Protocol = s.Address, s.Port, protocols[s.Protocol]
	}
	if s.Persistence > 0 {
		ks.Flags, ks.Timeout = cipvs.ServicePersistent, s.Persistence
	}
	return ks
}

// destToKernel is the destination as tunplan writes it: its family is its address's (the kernel
// keeps the port as given: 0 for a firewall-mark service's, which then forwards each packet to the
// port it was sent to).
func destToKernel(d protocol.Destination) cipvs.Destination {
	kd := cipvs.Destination{Address: d.Address, Port: d.Port, Weight: d.Weight, Family: familyOf(d.Address), FwdMethod: cipvs.Tunnel, TunnelType: cipvs.IPIP}
	for m, name := range forwards {
		if name == d.Forward {
			kd.FwdMethod = m
		}
	}
	switch d.Tunnel.Type {
	case protocol.TunnelGUE:
		kd.TunnelType = cipvs.GUE
	case protocol.TunnelGRE:
		kd.TunnelType = cipvs.GRE
	}
	kd.TunnelPort = d.Tunnel.Port
	if d.Tunnel.Checksum {
		kd.TunnelFlags |= cipvs.TunnelEncapChecksum
	}
	if d.Tunnel.RemoteChecksum {
		kd.TunnelFlags |= cipvs.TunnelEncapRemoteChecksum
	}
	return kd
}

// tunnelOf is a tunnel destination's tunnel as tunplan compares it: only what the kernel acts on
// (ip_vs_xmit.c: the port of GUE, the checksum flag of GUE and GRE, the remote checksum flag of
// GUE), so that a value the kernel ignores is not drift. A tunnel type this helper does not know
// is an error: it cannot be compared, nor written back.
func tunnelOf(d cipvs.Destination) (protocol.Tunnel, error) {
	var t protocol.Tunnel
	switch d.TunnelType {
	case cipvs.IPIP:
		return t, nil
	case cipvs.GUE:
		t.Type, t.Port = protocol.TunnelGUE, d.TunnelPort
		t.RemoteChecksum = d.TunnelFlags&cipvs.TunnelEncapRemoteChecksum != 0
	case cipvs.GRE:
		t.Type = protocol.TunnelGRE
	default:
		return t, fmt.Errorf("unknown tunnel type %d", d.TunnelType)
	}
	t.Checksum = d.TunnelFlags&cipvs.TunnelEncapChecksum != 0
	return t, nil
}

// Diff makes the steps from current to want. Services in current but not in want are removed
// (the engine only reads services tunplan owns or wants); inside a service every destination is
// compared, so one added by hand is drift. Scheduler, persistence, weight, forwarding method and
// tunnel (type, port, flags) are compared; counters never are. A changed tunnel is an update of the
// destination (IPVS_CMD_SET_DEST sets it), never a removal and a new one.
func Diff(open func() (Kernel, error), want, current []protocol.Service) []change.Step {
	flush := func() error {
		k, err := open()
		if err != nil {
			return err
		}
		return k.Flush()
	}
	have := make(map[protocol.Key]protocol.Service, len(current))
	for _, s := range current {
		have[s.Key()] = s
	}
	var steps []change.Step
	wanted := make(map[protocol.Key]bool, len(want))
	for _, w := range want {
		wanted[w.Key()] = true
		addr := "ipvs " + w.Key().String()
		cur, exists := have[w.Key()]
		switch {
		case !exists:
			steps = append(steps, ipvsStep(open, flush, change.Create, addr, "", w.Attrs(), Write{Cmd: NewService, Service: toKernel(w)}))
		case cur.Scheduler != w.Scheduler || cur.Persistence != w.Persistence:
			steps = append(steps, ipvsStep(open, flush, change.Update, addr, cur.Attrs(), w.Attrs(), Write{Cmd: SetService, Service: toKernel(w)}))
		}
		steps = destSteps(steps, open, flush, w, cur.Destinations)
	}
	for _, c := range current {
		if !wanted[c.Key()] {
			steps = append(steps, ipvsStep(open, flush, change.Delete, "ipvs "+c.Key().String(), fmt.Sprintf("%s destinations=%d", c.Attrs(), len(c.Destinations)), "", Write{Cmd: DelService, Service: toKernel(c)}))
		}
	}
	return steps
}

// destSteps appends to steps those that make svc's destinations from current.
func destSteps(steps []change.Step, open func() (Kernel, error), flush func() error, svc protocol.Service, current []protocol.Destination) []change.Step {
	find := func(ds []protocol.Destination, d protocol.Destination) (protocol.Destination, bool) {
		for _, x := range ds { // a service has a few destinations: a scan is cheaper than a map
			if x.Address == d.Address && x.Port == d.Port {
				return x, true
			}
		}
		return protocol.Destination{}, false
	}
	var ks cipvs.Service
	var prefix string
	name := func(d protocol.Destination) string {
		if prefix == "" {
			ks, prefix = toKernel(svc), "ipvs "+svc.Key().String()+" -> "
		}
		return prefix + netip.AddrPortFrom(d.Address, d.Port).String()
	}
	for _, d := range svc.Destinations {
		cur, ok := find(current, d)
		switch {
		case !ok:
			n := name(d)
			steps = append(steps, ipvsStep(open, flush, change.Create, n, "", d.Attrs(), Write{Cmd: NewDest, Service: ks, Dest: destToKernel(d)}))
		case cur.Weight != d.Weight || cur.Forward != d.Forward || cur.Tunnel != d.Tunnel:
			n := name(d)
			steps = append(steps, ipvsStep(open, flush, change.Update, n, cur.Attrs(), d.Attrs(), Write{Cmd: SetDest, Service: ks, Dest: destToKernel(d)}))
		}
	}
	for _, d := range current {
		if _, ok := find(svc.Destinations, d); !ok {
			n := name(d)
			steps = append(steps, ipvsStep(open, flush, change.Delete, n, d.Attrs(), "", Write{Cmd: DelDest, Service: ks, Dest: destToKernel(d)}))
		}
	}
	return steps
}

// ipvsStep opens IPVS only when the step runs: before ip_vs is loaded there is no IPVS to talk to.
// Do queues the write; flush waits for the kernel's answers to every write queued so far.
func ipvsStep(open func() (Kernel, error), flush func() error, act change.Action, addr, before, after string, w Write) change.Step {
	w.Name = act.String() + " " + strings.TrimPrefix(addr, "ipvs ")
	return change.Step{
		Change: change.Change{Module: "ipvs", Address: addr, Action: act, Before: before, After: after},
		Do: func() error {
			k, err := open()
			if err != nil {
				return fmt.Errorf("ipvs: %s: %w", w.Name, err)
			}
			return k.Queue(w)
		},
		Flush: flush,
	}
}

// sortDestinations orders a service's destinations by address, then port: the order tunplan lists
// them in (Facts, Status).
func sortDestinations(ds []protocol.Destination) {
	sortByAddrPort(ds, func(d protocol.Destination) netip.AddrPort { return netip.AddrPortFrom(d.Address, d.Port) })
}

// sortByAddrPort sorts ds by the address and port that at gives: sortDestinations's order, for any
// type of destination.
func sortByAddrPort[D any](ds []D, at func(D) netip.AddrPort) {
	slices.SortFunc(ds, func(a, b D) int { return at(a).Compare(at(b)) })
}

// ToKernel is the service as tunplan writes it to IPVS (its family, the netmask of one address,
// the persistence flag; a firewall-mark service by its mark).
func ToKernel(s protocol.Service) cipvs.Service { return toKernel(s) }

// DestToKernel is the destination as tunplan writes it to IPVS (its tunnel type, port and flags).
func DestToKernel(d protocol.Destination) cipvs.Destination { return destToKernel(d) }
