package probe

import (
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/tunplan/tunplan/modules/protocol"
)

// Probe sends probes from this host (a director) and reports what each saw, in their order: the
// helper's OpProbe. timeout bounds the whole request. A probe sent (TCP, or UDP with a payload)
// without a Source is sent from the address the kernel would use towards its RIP.
func Probe(probes []protocol.Probe, timeout time.Duration) ([]protocol.ProbeResult, error) {
	probes = append([]protocol.Probe(nil), probes...)
	routes := map[netip.Addr]route{}
	for i, p := range probes {
		if !p.RIP.Is4() {
			continue
		}
		r, ok := routes[p.RIP]
		if !ok {
			r = routeTo(p.RIP)
			routes[p.RIP] = r
		}
		if (p.Protocol == "tcp" || p.Protocol == "udp" && p.Send != "") && !p.Source.IsValid() {
			if !r.src.IsValid() {
				return nil, fmt.Errorf("probe %d: no source address: no route to %s", i+1, p.RIP)
			}
			probes[i].Source = r.src
		}
	}
	lo, hi := ephemeralPorts()
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // never fails on Linux
	b, err := NewBatch(probes, lo, hi, rand.New(rand.NewChaCha8(seed)))
	if err != nil {
		return nil, err
	}
	results := b.results
	if !b.Empty() {
		filter, err := b.Filter()
		if err != nil {
			return nil, err
		}
		w, err := Open(filter)
		if err != nil {
			return nil, err
		}
		results, err = b.Run(w, timeout, time.Now)
		w.Close()
		if err != nil {
			return nil, err
		}
	}
	for i := range results {
		results[i].PathMTU = routes[results[i].RIP].mtu
	}
	return results, nil
}

// route is what the kernel's route to a realserver says: the source address it picks and the MTU.
type route struct {
	src netip.Addr
	mtu int
}

// routeTo asks the kernel for its route to dst (ip route get): the route's MTU if it has one (or a
// learnt path MTU), else its device's. Zero values when there is no route.
func routeTo(dst netip.Addr) route {
	var r route
	rs, err := netlink.RouteGet(dst.AsSlice())
	if err != nil || len(rs) == 0 {
		return r
	}
	if a, ok := netip.AddrFromSlice(rs[0].Src); ok {
		r.src = a.Unmap()
	}
	r.mtu = rs[0].MTU
	if r.mtu == 0 {
		if l, err := netlink.LinkByIndex(rs[0].LinkIndex); err == nil {
			r.mtu = l.Attrs().MTU
		}
	}
	return r
}

// ephemeralPorts is the kernel's ephemeral port range (net.ipv4.ip_local_port_range).
func ephemeralPorts() (lo, hi uint16) {
	lo, hi = 32768, 60999
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return lo, hi
	}
	l, err1 := strconv.ParseUint(f[0], 10, 16)
	h, err2 := strconv.ParseUint(f[1], 10, 16)
	if err1 != nil || err2 != nil || l == 0 || h < l {
		return lo, hi
	}
	return uint16(l), uint16(h)
}

// linuxWire sends through a raw IPIP socket and captures through an AF_PACKET socket.
type linuxWire struct {
	raw     *net.IPConn // socket(AF_INET, SOCK_RAW, IPPROTO_IPIP), no IP_HDRINCL
	capture *os.File    // socket(AF_PACKET, SOCK_DGRAM, 0) with filter, bound to ETH_P_IP on every device
}

// Open opens the sockets of a probe: a raw IPIP socket, whose payload the kernel sends unchanged
// behind an outer IPv4 header of protocol 4 (it only sends: a filter drops what it would
// receive), and a capture of every device's received IPv4 packets that filter keeps. The capture
// sees the realservers' answers before IP routing, which drops them as martians (their source, the
// VIP, is the director's own address); the filter is attached before the socket is bound to a
// protocol, so nothing unfiltered is ever queued.
func Open(filter []bpf.RawInstruction) (Wire, error) {
	raw, err := net.ListenIP("ip4:4", nil)
	if err != nil {
		return nil, fmt.Errorf("raw IPIP socket: %w", err)
	}
	if err := attachTo(raw, DropAll()); err != nil {
		raw.Close()
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	if err := attach(fd, filter); err != nil {
		unix.Close(fd)
		raw.Close()
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP)}); err != nil {
		unix.Close(fd)
		raw.Close()
		return nil, fmt.Errorf("packet socket: bind: %w", err)
	}
	// Non-blocking, the descriptor joins Go's poller: reads honour deadlines.
	return &linuxWire{raw: raw, capture: os.NewFile(uintptr(fd), "packet")}, nil
}

func (w *linuxWire) Send(rip netip.Addr, payload []byte) error {
	_, err := w.raw.WriteToIP(payload, &net.IPAddr{IP: rip.AsSlice()})
	return err
}

func (w *linuxWire) Recv(deadline time.Time) ([]byte, error) {
	if err := w.capture.SetReadDeadline(deadline); err != nil {
		return nil, err
	}
	buf := make([]byte, max(SnapLen, UDPSnapLen))
	n, err := w.capture.Read(buf)
	return buf[:n], err
}

func (w *linuxWire) Close() error {
	return errors.Join(w.capture.Close(), w.raw.Close())
}

func attachTo(c *net.IPConn, filter []bpf.RawInstruction) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var aerr error
	if err := rc.Control(func(fd uintptr) { aerr = attach(int(fd), filter) }); err != nil {
		return err
	}
	return aerr
}

func attach(fd int, filter []bpf.RawInstruction) error {
	ins := make([]unix.SockFilter, len(filter))
	for i, r := range filter {
		ins[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	prog := unix.SockFprog{Len: uint16(len(ins)), Filter: &ins[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
		return fmt.Errorf("attaching the capture filter: %w", err)
	}
	return nil
}

// htons puts a 16-bit value in network byte order, as sockaddr_ll's protocol wants it.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
