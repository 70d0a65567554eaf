// Package sockets reads which sockets of a host accept new flows (/proc/net/tcp, tcp6, udp, udp6)
// and which program holds each (/proc/<pid>/fd, /proc/<pid>/comm), for `tunplan verify` to say
// whether something listens on a realserver's VIP:port and, when nothing does, what listens there
// instead. It only reads.
package sockets

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Socket is one socket that accepts new flows: a TCP socket in LISTEN state, or a bound,
// unconnected UDP socket.
type Socket struct {
	Local netip.AddrPort // the address it is bound to; IPv4-mapped IPv6 addresses are unmapped
	V6    bool           // an IPv6 socket (tcp6, udp6): bound to "::", it also accepts IPv4 unless IPV6_V6ONLY
	Inode uint64         // the socket's inode, which /proc/<pid>/fd links name as socket:[inode]
}

// Kernel is the boundary to what the kernel says of its sockets.
type Kernel interface {
	// Listening lists the sockets of protocol ("tcp" or "udp") that accept new flows, in the host's
	// network namespace (the reader's).
	Listening(protocol string) ([]Socket, error)
	// Programs names the program (its comm) holding each of inodes; inodes no process holds that
	// the reader can see are left out.
	Programs(inodes []uint64) (map[uint64]string, error)
}

// Proc reads /proc (Root, for tests: a directory laid out like /proc).
type Proc struct{ Root string }

func (p Proc) path(elem ...string) string {
	root := p.Root
	if root == "" {
		root = "/proc"
	}
	return filepath.Join(append([]string{root}, elem...)...)
}

// tcpListen is the state column of a listening TCP socket; tcpClose that of an unconnected UDP one.
const (
	tcpListen = 0x0A
	tcpClose  = 0x07
)

func (p Proc) Listening(protocol string) ([]Socket, error) {
	state := map[string]int{"tcp": tcpListen, "udp": tcpClose}
	want, ok := state[protocol]
	if !ok {
		return nil, fmt.Errorf("sockets: unknown protocol %q", protocol)
	}
	var out []Socket
	for _, name := range []string{protocol, protocol + "6"} {
		f, err := os.Open(p.path("net", name))
		if os.IsNotExist(err) && name != protocol {
			continue // no IPv6
		}
		if err != nil {
			return nil, fmt.Errorf("sockets: %w", err)
		}
		socks, err := Parse(f, want)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("sockets: %s: %w", p.path("net", name), err)
		}
		out = append(out, socks...)
	}
	return out, nil
}

// Parse reads a /proc/net/{tcp,tcp6,udp,udp6} table and returns its sockets in state (0x0A:
// LISTEN), with no remote address (for UDP, a connected socket is no listener).
func Parse(r io.Reader, state int) ([]Socket, error) {
	var out []Socket
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	first := true
	for sc.Scan() {
		if first { // the header
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 10 {
			continue
		}
		st, err := strconv.ParseUint(f[3], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("bad state %q", f[3])
		}
		if int(st) != state {
			continue
		}
		local, err := parseAddrPort(f[1])
		if err != nil {
			return nil, err
		}
		remote, err := parseAddrPort(f[2])
		if err != nil {
			return nil, err
		}
		if !remote.Addr().IsUnspecified() || remote.Port() != 0 {
			continue
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad inode %q", f[9])
		}
		out = append(out, Socket{Local: netip.AddrPortFrom(local.Addr().Unmap(), local.Port()), V6: local.Addr().Is6(), Inode: inode})
	}
	return out, sc.Err()
}

// parseAddrPort decodes "0100007F:0050" (127.0.0.1:80): the address is the kernel's bytes printed
// 32 bits at a time as host-order integers, the port a host-order integer.
func parseAddrPort(s string) (netip.AddrPort, error) {
	a, p, ok := strings.Cut(s, ":")
	if !ok || (len(a) != 8 && len(a) != 32) {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	raw, err := hex.DecodeString(a)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	b := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(b[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port in %q", s)
	}
	addr, _ := netip.AddrFromSlice(b)
	return netip.AddrPortFrom(addr, uint16(port)), nil
}

// Programs walks /proc/<pid>/fd for links to the inodes' sockets. Processes that exit meanwhile,
// or whose descriptors cannot be read, are skipped.
func (p Proc) Programs(inodes []uint64) (map[uint64]string, error) {
	out := map[uint64]string{}
	if len(inodes) == 0 {
		return out, nil
	}
	want := map[string]uint64{}
	for _, n := range inodes {
		want["socket:["+strconv.FormatUint(n, 10)+"]"] = n
	}
	entries, err := os.ReadDir(p.path())
	if err != nil {
		return nil, fmt.Errorf("sockets: %w", err)
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		fds, err := os.ReadDir(p.path(e.Name(), "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			target, err := os.Readlink(p.path(e.Name(), "fd", fd.Name()))
			if err != nil {
				continue
			}
			n, ok := want[target]
			if !ok {
				continue
			}
			if _, named := out[n]; named {
				continue
			}
			if comm, err := os.ReadFile(p.path(e.Name(), "comm")); err == nil {
				out[n] = strings.TrimSpace(string(comm))
			}
		}
		if len(out) == len(want) {
			break
		}
	}
	return out, nil
}
