package ipvs

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"

	cipvs "github.com/cloudflare/ipvs"
)

// procKey is a service as /proc/net/ip_vs names it: by protocol, address and port, or by its
// firewall mark alone (an FWM line does not say the service's address family).
type procKey struct {
	proto  cipvs.Protocol
	addr   netip.Addr
	port   uint16
	fwmark uint32
}

func procKeyOf(s cipvs.Service) procKey {
	if s.FWMark != 0 {
		return procKey{fwmark: s.FWMark}
	}
	return procKey{proto: s.Protocol, addr: s.Address, port: s.Port}
}

var procProtocols = map[string]cipvs.Protocol{"TCP": cipvs.TCP, "UDP": cipvs.UDP, "SCTP": cipvs.SCTP}

var procForwards = map[string]cipvs.ForwardType{"Masq": cipvs.Masquerade, "Local": cipvs.Local, "Tunnel": cipvs.Tunnel, "Route": cipvs.DirectRoute}

// readProc reads the destinations of the services of /proc/net/ip_vs, in the layout of
// ip_vs_info_seq_show (net/netfilter/ipvs/ip_vs_ctl.c): a service line, then one line per
// destination, addresses and ports in hexadecimal, an IPv6 address as %pI6 prints it (eight groups
// of four digits) in brackets:
//
//	TCP  C612642C:0050 rr
//	  -> C612C801:0050      Tunnel  1      0          0
//	TCP  [2001:0db8:0000:0000:0000:0000:0000:0180]:0050 rr
//	  -> [2001:0db8:0000:0000:0000:0000:0000:0183]:0050      Tunnel  1      0          0
//	FWM  00000001 rr persistent 300 FFFFFFFF
//	  -> C612C801:0000      Tunnel  1      0          0
//
// An FWM line names its mark, not its family: a mark listed twice (an IPv4 and an IPv6 service)
// is left out, as is a service with a destination line it does not parse; the caller dumps those
// over netlink.
func readProc(path string) (map[procKey][]cipvs.Destination, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ipvs: %w", err)
	}
	return parseProc(b)
}

func parseProc(b []byte) (map[procKey][]cipvs.Destination, error) {
	out := map[procKey][]cipvs.Destination{}
	marks := map[uint32]bool{} // the marks of the FWM lines so far
	var cur *procKey           // the service whose destinations follow; nil: skip them
	var f [4][]byte
	for n := 1; len(b) > 0; n++ {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if n <= 3 {
			continue // the version and the two lines naming the columns
		}
		nf := fields(line, &f)
		if nf == 0 {
			continue
		}
		if string(f[0]) != "->" {
			cur = nil
			if nf < 2 {
				continue
			}
			var k procKey
			if string(f[0]) == "FWM" {
				m, ok := unhex(f[1])
				if !ok || len(f[1]) != 8 {
					continue
				}
				k = procKey{fwmark: m}
				if marks[m] {
					delete(out, k) // the IPv4 and the IPv6 service of this mark: which is which is not said
					continue
				}
				marks[m] = true
			} else {
				proto, ok := procProtocols[string(f[0])]
				if !ok {
					continue // a protocol tunplan does not write
				}
				a, p, ok := hexAddrPort(f[1])
				if !ok {
					continue
				}
				k = procKey{proto: proto, addr: a, port: p}
			}
			out[k] = make([]cipvs.Destination, 0, 16)
			cur = &k
			continue
		}
		if cur == nil {
			continue
		}
		if nf < 4 {
			return nil, fmt.Errorf("ipvs: /proc/net/ip_vs: line %d: %q", n, line)
		}
		a, p, ok := hexAddrPort(f[1])
		fwd, fok := procForwards[string(f[2])]
		w, wok := decimal(f[3])
		if !ok || !fok || !wok {
			delete(out, *cur) // read this service over netlink
			cur = nil
			continue
		}
		out[*cur] = append(out[*cur], cipvs.Destination{Address: a, Port: p, FwdMethod: fwd, Weight: w, Family: familyOf(a)})
	}
	return out, nil
}

// fields puts the first len(f) space-separated fields of line in f and returns how many it found.
func fields(line []byte, f *[4][]byte) int {
	n := 0
	for n < len(f) {
		for len(line) > 0 && line[0] == ' ' {
			line = line[1:]
		}
		if len(line) == 0 {
			break
		}
		i := bytes.IndexByte(line, ' ')
		if i < 0 {
			i = len(line)
		}
		f[n], line = line[:i], line[i:]
		n++
	}
	return n
}

func decimal(b []byte) (uint32, bool) {
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' || v > 1<<32 {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return uint32(v), len(b) > 0 && v < 1<<32
}

func unhex(b []byte) (uint32, bool) {
	var v uint32
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint32(c-'0')
		case c >= 'A' && c <= 'F':
			v = v<<4 | uint32(c-'A'+10)
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint32(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// hexAddrPort parses an address and port as ip_vs_info_seq_show prints them, in hexadecimal: IPv4
// "C612642C:0050" (%08X:%04X), IPv6 "[2001:0db8:0000:0000:0000:0000:0000:0180]:0050" ([%pI6]:%04X).
func hexAddrPort(b []byte) (netip.Addr, uint16, bool) {
	switch {
	case len(b) == 13 && b[8] == ':':
		a, ok1 := unhex(b[:8])
		p, ok2 := unhex(b[9:])
		if !ok1 || !ok2 {
			return netip.Addr{}, 0, false
		}
		return netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), uint16(p), true
	case len(b) == 46 && b[0] == '[' && b[40] == ']' && b[41] == ':':
		var a [16]byte
		for i := range 8 {
			at := 1 + 5*i // group i, then a colon but after the last
			if i < 7 && b[at+4] != ':' {
				return netip.Addr{}, 0, false
			}
			g, ok := unhex(b[at : at+4])
			if !ok {
				return netip.Addr{}, 0, false
			}
			a[2*i], a[2*i+1] = byte(g>>8), byte(g)
		}
		p, ok := unhex(b[42:])
		if !ok {
			return netip.Addr{}, 0, false
		}
		return netip.AddrFrom16(a), uint16(p), true
	}
	return netip.Addr{}, 0, false
}
