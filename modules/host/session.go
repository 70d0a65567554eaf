package host

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/tunplan/tunplan/modules/protocol"
)

// Session is the SSH connection a request came over, as sshd describes it in SSH_CONNECTION
// ("client-ip client-port server-ip server-port"), and the device the route back to the client uses.
type Session struct {
	Client, Server netip.AddrPort
	Device         string // "" when unknown
}

// ParseSession reads SSH_CONNECTION; it returns nil for an empty or malformed value (no guard).
func ParseSession(v string) *Session {
	f := strings.Fields(v)
	if len(f) != 4 {
		return nil
	}
	client, err1 := parseAddrPort(f[0], f[1])
	server, err2 := parseAddrPort(f[2], f[3])
	if err1 != nil || err2 != nil {
		return nil
	}
	return &Session{Client: client, Server: server}
}

// String is the session as SSH_CONNECTION gives it.
func (s *Session) String() string {
	return fmt.Sprintf("%s %d %s %d", s.Client.Addr(), s.Client.Port(), s.Server.Addr(), s.Server.Port())
}

func parseAddrPort(addr, port string) (netip.AddrPort, error) {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.AddrPort{}, err
	}
	var p uint16
	if _, err := fmt.Sscan(port, &p); err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(a.Unmap(), p), nil
}

// check refuses a move from cur to want that would cut the session: removing the address it arrives
// on, putting the client's address (or a prefix holding it) on a managed device, which reroutes the
// replies, taking down the device the replies leave by, or an IPVS service on the SSH port itself.
func (s *Session) check(want, cur protocol.State) error {
	if s == nil {
		return nil
	}
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("refusing to cut this SSH session (%s -> %s): "+format, append([]any{s.Client, s.Server}, args...)...)
	}
	wantAddrs := map[string]map[netip.Prefix]bool{}
	for _, l := range want.Links {
		wantAddrs[l.Name] = map[netip.Prefix]bool{}
		for _, p := range l.Addresses {
			wantAddrs[l.Name][p] = true
		}
	}
	curAddrs := map[string]map[netip.Prefix]bool{}
	for _, l := range cur.Links {
		curAddrs[l.Name] = map[netip.Prefix]bool{}
		for _, p := range l.Addresses {
			curAddrs[l.Name][p] = true
			if p.Addr() == s.Server.Addr() && !wantAddrs[l.Name][p] {
				return refuse("the plan would remove %s from %s, the address this session arrives on", p, l.Name)
			}
		}
	}
	for _, l := range want.Links {
		for _, p := range l.Addresses {
			if !curAddrs[l.Name][p] && p.Contains(s.Client.Addr()) {
				return refuse("the plan would put %s on %s, which holds this session's client address %s: the replies would stay on the host", p, l.Name, s.Client.Addr())
			}
		}
		if l.Down && s.Device == l.Name {
			return refuse("the plan would take %s down, the device the replies to this session leave by", l.Name)
		}
	}
	for _, svc := range want.Services {
		if svc.Protocol == "tcp" && svc.Address == s.Server.Addr() && svc.Port == s.Server.Port() {
			return refuse("the plan would make %s an IPVS service, the address and port this SSH session uses", svc.Key())
		}
	}
	return nil
}
