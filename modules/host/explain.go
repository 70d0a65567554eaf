package host

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/tunplan/tunplan/modules/protocol"
	"github.com/tunplan/tunplan/modules/route"
	"github.com/tunplan/tunplan/modules/sockets"
)

// The facts explain reads about each path to a realserver, in the order that decides a request's
// fate there: decapsulated at all (ipip, tunl0 up), for an address the host has, past the reverse
// path filter, accepted by a listening socket, and answered by a route back. ARP comes last and is
// informational: it only matters when the realserver shares a LAN with the director or clients.
const (
	FactIPIP     = "ipip loaded"
	FactTunnel   = "tunl0 up"
	FactVIP      = "VIP on tunl0"
	FactRPFilter = "rp_filter for tunl0"
	FactListen   = "listening on VIP:port"
	FactRoute    = "route to the director"
	FactARP      = "arp"
)

// explain reads, for each path, the facts that decide whether the realserver answers a request
// the director tunnels to it. It takes no lock and changes nothing; a fact it cannot read is a
// failing one that says so.
func (e *Engine) explain(paths []protocol.Path) ([]protocol.PathFacts, error) {
	if e.Sockets == nil || e.Routes == nil {
		return nil, errors.New("explain: this helper cannot read sockets or routes")
	}
	x := &explainer{e: e, listening: map[string][]sockets.Socket{}, listenErr: map[string]error{}}
	out := make([]protocol.PathFacts, 0, len(paths))
	for _, p := range paths {
		if p.Protocol != "tcp" && p.Protocol != "udp" {
			return nil, fmt.Errorf("explain: %s/%s:%d: unknown protocol %q", p.Protocol, p.VIP, p.Port, p.Protocol)
		}
		out = append(out, protocol.PathFacts{Path: p, Facts: []protocol.Fact{
			x.ipip(), x.tunnel(), x.vip(p), x.rpFilter(), x.listen(p), x.route(p), x.arp(),
		}})
	}
	return out, nil
}

// explainer reads each host-wide fact once per request, however many paths ask for it.
type explainer struct {
	e         *Engine
	listening map[string][]sockets.Socket
	listenErr map[string]error
	programs  map[uint64]string
}

func fact(name, value string, ok bool, cause string) protocol.Fact {
	if ok {
		cause = ""
	}
	return protocol.Fact{Name: name, Value: value, OK: ok, Cause: cause}
}

func (x *explainer) ipip() protocol.Fact {
	if x.e.Kmod.Loaded("ipip") {
		return fact(FactIPIP, "loaded", true, "")
	}
	return fact(FactIPIP, "not loaded", false, "ipip is not loaded: nothing decapsulates the director's IPIP packets (modprobe ipip)")
}

func (x *explainer) tunnel() protocol.Fact {
	dev := protocol.TunnelDevice
	l, err := x.e.Tunnel.LinkByName(dev)
	var nf netlink.LinkNotFoundError
	switch {
	case errors.As(err, &nf):
		return fact(FactTunnel, "absent", false, "there is no "+dev+": nothing decapsulates the director's IPIP packets (is ipip loaded, and net.core.fb_tunnels_only_for_init_net 0?)")
	case err != nil:
		return fact(FactTunnel, "unknown", false, "could not read "+dev+": "+err.Error())
	case l.Attrs().Flags&net.FlagUp == 0:
		return fact(FactTunnel, "down", false, dev+" is down: the director's IPIP packets are not decapsulated (ip link set "+dev+" up)")
	}
	return fact(FactTunnel, "up", true, "")
}

// vip finds the VIP on tunl0; on another device (lo, as LVS-DR set-ups have it) the host still
// accepts it, and says where.
func (x *explainer) vip(p protocol.Path) protocol.Fact {
	dev := protocol.TunnelDevice
	links, err := x.e.Tunnel.LinkList()
	if err != nil {
		return fact(FactVIP, "unknown", false, "could not list the devices: "+err.Error())
	}
	var elsewhere string
	for _, l := range links {
		addrs, err := x.e.Tunnel.AddrList(l, netlink.FAMILY_V4)
		if err != nil {
			return fact(FactVIP, "unknown", false, "could not list the addresses of "+l.Attrs().Name+": "+err.Error())
		}
		for _, a := range addrs {
			ip, ok := netip.AddrFromSlice(a.IP.To4())
			if !ok || ip != p.VIP {
				continue
			}
			ones, _ := a.Mask.Size()
			pfx := netip.PrefixFrom(ip, ones).String()
			if l.Attrs().Name == dev {
				return fact(FactVIP, pfx, true, "")
			}
			if elsewhere == "" {
				elsewhere = pfx + " on " + l.Attrs().Name + ", not on " + dev
			}
		}
	}
	if elsewhere != "" {
		return fact(FactVIP, elsewhere, true, "")
	}
	return fact(FactVIP, "absent", false, fmt.Sprintf("%s is not on %s: the decapsulated request is for an address this host does not have, and is dropped", p.VIP, dev))
}

// rpFilter is the effective reverse-path filter of tunl0: the larger of all's and the device's.
// Strict (1) drops the decapsulated request, whose source is reached by another device; loose (2)
// and off (0) let it through.
func (x *explainer) rpFilter() protocol.Fact {
	keys := []string{"net.ipv4.conf.all.rp_filter", "net.ipv4.conf." + protocol.TunnelDevice + ".rp_filter"}
	eff, vals := 0, map[string]int{}
	for _, k := range keys {
		v, err := x.e.Sysctl.Read(k)
		if errors.Is(err, fs.ErrNotExist) {
			continue // no tunl0 (yet): all decides
		}
		if err != nil {
			return fact(FactRPFilter, "unknown", false, "could not read "+k+": "+err.Error())
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fact(FactRPFilter, "unknown", false, fmt.Sprintf("%s is %q, not a number", k, v))
		}
		vals[k] = n
		eff = max(eff, n)
	}
	var why []string
	for _, k := range keys {
		if n, ok := vals[k]; ok && (n == eff || eff == 0) {
			why = append(why, k+"="+strconv.Itoa(n))
		}
	}
	value := strconv.Itoa(eff) + " (" + strings.Join(why, ", ") + ")"
	return fact(FactRPFilter, value, eff != 1, "rp_filter for "+protocol.TunnelDevice+" is "+value+": the decapsulated request is dropped")
}

// listen looks for a socket that accepts VIP:port: bound to the VIP, or to 0.0.0.0 or :: (an IPv6
// socket on :: takes IPv4 too unless IPV6_V6ONLY, which /proc does not show). When there is none,
// it says what listens on the port instead, and which program.
func (x *explainer) listen(p protocol.Path) protocol.Fact {
	want := netip.AddrPortFrom(p.VIP, p.Port)
	socks, err := x.sockets(p.Protocol)
	if err != nil {
		return fact(FactListen, "unknown", false, "could not read the "+p.Protocol+" sockets: "+err.Error())
	}
	verb := "listens"
	if p.Protocol == "udp" {
		verb = "is bound"
	}
	var match, onPort []sockets.Socket
	for _, s := range socks {
		if s.Local.Port() != p.Port {
			continue
		}
		if a := s.Local.Addr(); a == p.VIP || a.IsUnspecified() {
			match = append(match, s)
		} else {
			onPort = append(onPort, s)
		}
	}
	if len(match) > 0 {
		return fact(FactListen, x.owners(match, verb, ""), true, "")
	}
	if len(onPort) == 0 {
		return fact(FactListen, "nothing "+verb+" on port "+strconv.Itoa(int(p.Port)), false,
			fmt.Sprintf("nothing %s on %s (nor on any other address on port %d)", verb, want, p.Port))
	}
	others := x.owners(onPort, verb, " only")
	return fact(FactListen, others, false, fmt.Sprintf("nothing %s on %s (%s)", verb, want, others))
}

func (x *explainer) sockets(proto string) ([]sockets.Socket, error) {
	if _, ok := x.listening[proto]; !ok && x.listenErr[proto] == nil {
		socks, err := x.e.Sockets.Listening(proto)
		x.listening[proto], x.listenErr[proto] = socks, err
		if socks == nil && err == nil {
			x.listening[proto] = []sockets.Socket{}
		}
	}
	return x.listening[proto], x.listenErr[proto]
}

// owners renders sockets by program: "nginx listens on 198.18.10.182:80 only", "nginx listens on
// 0.0.0.0:80", "a program this helper cannot see listens on …".
func (x *explainer) owners(socks []sockets.Socket, verb, suffix string) string {
	if x.programs == nil {
		var inodes []uint64
		for _, l := range []string{"tcp", "udp"} {
			for _, s := range x.listening[l] {
				inodes = append(inodes, s.Inode)
			}
		}
		x.programs, _ = x.e.Sockets.Programs(inodes)
		if x.programs == nil {
			x.programs = map[uint64]string{}
		}
	}
	var order []string
	addrs := map[string][]string{}
	for _, s := range socks {
		prog := x.programs[s.Inode]
		if prog == "" {
			prog = "a program this helper cannot see"
		}
		if _, seen := addrs[prog]; !seen {
			order = append(order, prog)
		}
		if a := s.Local.String(); !slices.Contains(addrs[prog], a) {
			addrs[prog] = append(addrs[prog], a)
		}
	}
	var parts []string
	for _, prog := range order {
		parts = append(parts, prog+" "+verb+" on "+andJoin(addrs[prog])+suffix)
	}
	return strings.Join(parts, "; ")
}

func andJoin(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// route asks the kernel how the replies reach the director's address (the probe's source).
func (x *explainer) route(p protocol.Path) protocol.Fact {
	if !p.Director.IsValid() {
		return fact(FactRoute, "unknown", false, "the request named no director address")
	}
	r, err := x.e.Routes.Get(p.Director)
	if err != nil {
		return fact(FactRoute, "unknown", false, "could not look up the route to "+p.Director.String()+": "+err.Error())
	}
	if r.Forwards() {
		return fact(FactRoute, r.String(), true, "")
	}
	how := "is a " + string(r.Kind) + " route"
	if r.Kind == route.None {
		how = "does not exist"
	}
	return fact(FactRoute, r.String(), false, fmt.Sprintf("the route back to the director (%s) %s: the replies are dropped", p.Director, how))
}

// arp tells whether the host keeps the VIP out of ARP (arp_ignore=1, arp_announce=2 on all). It
// is never a cause: through a tunnel the realserver need not share a LAN with anyone.
func (x *explainer) arp() protocol.Fact {
	var vals []string
	hidden := true
	for _, k := range []struct {
		name string
		min  int
	}{{"arp_ignore", 1}, {"arp_announce", 2}} {
		v, err := x.e.Sysctl.Read("net.ipv4.conf.all." + k.name)
		if err != nil {
			v = "unknown"
		}
		vals = append(vals, k.name+"="+v)
		if n, err := strconv.Atoi(v); err != nil || n < k.min {
			hidden = false
		}
	}
	value := strings.Join(vals, ", ") + " (net.ipv4.conf.all)"
	if hidden {
		value += ": the VIP is kept out of ARP"
	} else {
		value += ": this host may answer ARP for the VIP (harmless unless it shares a LAN with the director or the clients)"
	}
	return fact(FactARP, value, true, "")
}
