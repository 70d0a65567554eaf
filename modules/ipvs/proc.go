package ipvs

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"

	cipvs "github.com/cloudflare/ipvs"
)

type procKey struct {
	proto cipvs.Protocol
	addr  netip.Addr
	port  uint16
}

var procProtocols = map[string]cipvs.Protocol{"TCP": cipvs.TCP, "UDP": cipvs.UDP, "SCTP": cipvs.SCTP}

var procForwards = map[string]cipvs.ForwardType{"Masq": cipvs.Masquerade, "Local": cipvs.Local, "Tunnel": cipvs.Tunnel, "Route": cipvs.DirectRoute}

// readProc reads the destinations of the IPv4 services of /proc/net/ip_vs (ip_vs_info_seq_show):
//
//	TCP  C612642C:0050 rr
//	  -> C612C801:0050      Tunnel  1      0          0
//
// A service with a line it does not parse (an IPv6 destination) is left out, as are IPv6 and
// fwmark services: the caller dumps those over netlink.
func readProc(path string) (map[procKey][]cipvs.Destination, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ipvs: %w", err)
	}
	return parseProc(b)
}

func parseProc(b []byte) (map[procKey][]cipvs.Destination, error) {
	out := map[procKey][]cipvs.Destination{}
	var cur *procKey // the service whose destinations follow; nil: skip them
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
			proto, ok := procProtocols[string(f[0])]
			if !ok || nf < 2 {
				continue // FWM, or a protocol tunplan does not write
			}
			a, p, ok := hexAddrPort(f[1])
			if !ok {
				continue // IPv6
			}
			k := procKey{proto, a, p}
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
		out[*cur] = append(out[*cur], cipvs.Destination{Address: a, Port: p, FwdMethod: fwd, Weight: w, Family: cipvs.INET})
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

// hexAddrPort parses "C612642C:0050" (an IPv4 address and port in hexadecimal).
func hexAddrPort(b []byte) (netip.Addr, uint16, bool) {
	if len(b) != 13 || b[8] != ':' {
		return netip.Addr{}, 0, false
	}
	a, ok1 := unhex(b[:8])
	p, ok2 := unhex(b[9:])
	if !ok1 || !ok2 {
		return netip.Addr{}, 0, false
	}
	return netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), uint16(p), true
}
