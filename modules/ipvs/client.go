package ipvs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"syscall"

	cipvs "github.com/cloudflare/ipvs"
)

// conn is one generic netlink socket: Send is one sendmsg of whole messages, Recv one recvmsg of a
// datagram into buf. Tests replace it with a fake kernel.
type conn interface {
	Send(b []byte) error
	Recv(buf []byte, block bool) (int, error) // block=false: EAGAIN when nothing is queued
	Close() error
}

// Batch limits: the kernel handles a datagram of requests one by one in sendmsg (genl_rcv →
// netlink_rcv_skb) and answers only failures unless NLM_F_ACK is set, which we set on the last
// request of a batch. A batch must fit the socket's send buffer.
const (
	maxBatchMsgs  = 1000
	maxBatchBytes = 192 << 10
	sendBuf       = 1 << 20
	recvBuf       = 8 << 20 // room for an answer to every request of a batch, should all fail
	readers       = 4       // sockets dumping destinations at once (one dump per socket at a time)
	procMin       = 32      // from this many services on, destinations are read from /proc/net/ip_vs
)

// Client talks to IPVS over generic netlink. Writes are queued and sent in batches; reads dump the
// table. It is not safe for concurrent use.
type Client struct {
	dial   func() (conn, error)
	family uint16
	c      conn   // writes and the service dump
	extra  []conn // more sockets for destination dumps
	seq    uint32
	buf    []byte

	batch   []byte  // encoded, unsent requests
	pending []Write // their writes; request i has sequence number first+i
	first   uint32
	lastOff int   // where the batch's last request starts
	err     error // the first failure since it was last returned
	limMsgs int
	limB    int
	proc    string // /proc/net/ip_vs; "" reads destinations over netlink only
}

// Open connects to the kernel's IPVS (the ip_vs module must be loaded).
func Open() (*Client, error) { return open(dialSocket) }

func open(dial func() (conn, error)) (*Client, error) {
	c, err := dial()
	if err != nil {
		return nil, err
	}
	cl := &Client{dial: dial, c: c, buf: make([]byte, 64<<10), limMsgs: maxBatchMsgs, limB: maxBatchBytes, proc: "/proc/net/ip_vs"}
	if cl.family, err = cl.resolve("IPVS"); err != nil {
		c.Close()
		return nil, err
	}
	return cl, nil
}

// Close closes the client's sockets; queued writes that were not flushed are dropped.
func (cl *Client) Close() error {
	for _, c := range cl.extra {
		c.Close()
	}
	return cl.c.Close()
}

func (cl *Client) nextSeq() uint32 {
	cl.seq++
	return cl.seq
}

// resolve asks the generic netlink controller for a family's id.
func (cl *Client) resolve(name string) (uint16, error) {
	seq := cl.nextSeq()
	req := appendMsg(nil, genlIDCtrl, flagRequest, seq, ctrlCmdGetFam, func(b []byte) []byte {
		return putAttr(b, ctrlAttrName, append([]byte(name), 0)...)
	})
	var id uint16
	err := cl.exchange(cl.c, cl.buf, req, seq, func(m message) (bool, error) {
		if len(m.data) < genlHdrLen {
			return false, errors.New("ipvs: short generic netlink message")
		}
		attrs(m.data[genlHdrLen:], func(t uint16, d []byte) {
			if t == ctrlAttrFamID {
				id = u16(d)
			}
		})
		return true, nil
	})
	if errors.Is(err, syscall.ENOENT) {
		return 0, fmt.Errorf("generic netlink family %s not found", name)
	}
	if err == nil && id == 0 {
		err = fmt.Errorf("generic netlink family %s: no id in the answer", name)
	}
	return id, err
}

// exchange sends one request and hands every answer with its sequence number to fn until fn says
// it is done, or until the end of a dump or an error.
func (cl *Client) exchange(c conn, buf, req []byte, seq uint32, fn func(message) (bool, error)) error {
	if err := c.Send(req); err != nil {
		return fmt.Errorf("ipvs: netlink send: %w", err)
	}
	var ferr error // keep reading to the end of a dump after fn failed
	for {
		n, err := c.Recv(buf, true)
		if err != nil {
			return fmt.Errorf("ipvs: netlink receive: %w", err)
		}
		msgs, err := parseMessages(buf[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.seq != seq {
				continue // a late answer to an earlier request
			}
			switch m.typ {
			case nlmsgDone:
				if len(m.data) >= 4 {
					if code := int32(binary.NativeEndian.Uint32(m.data)); code < 0 {
						return syscall.Errno(-code)
					}
				}
				return ferr
			case nlmsgError:
				code, _, err := errorCode(m)
				if err != nil {
					return err
				}
				if code != 0 {
					return code
				}
				return ferr
			default:
				if ferr != nil {
					continue
				}
				done, err := fn(m)
				if err != nil {
					ferr = err
				}
				if done && m.flags&flagMulti == 0 {
					return ferr
				}
			}
		}
	}
}

// dump runs one dump request on c, receiving into buf, and hands each answer's attributes to fn.
func (cl *Client) dump(c conn, buf []byte, seq uint32, cmd Cmd, svc *cipvs.Service, fn func(attrs []byte) error) error {
	req := appendMsg(nil, cl.family, flagRequest|flagDump, seq, uint8(cmd), func(b []byte) []byte {
		if svc != nil {
			b = nest(b, cmdAttrService, func(b []byte) []byte { return appendService(b, *svc) })
		}
		return b
	})
	return cl.exchange(c, buf, req, seq, func(m message) (bool, error) {
		if len(m.data) < genlHdrLen {
			return false, errors.New("ipvs: short generic netlink message")
		}
		return false, fn(m.data[genlHdrLen:])
	})
}

// Services dumps the virtual services; an empty table is an empty list.
func (cl *Client) Services() ([]cipvs.Service, error) {
	var out []cipvs.Service
	err := cl.dump(cl.c, cl.buf, cl.nextSeq(), getService, nil, func(a []byte) error {
		s, err := decodeService(a)
		out = append(out, s)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	return out, nil
}

// Destinations lists the destinations of each service: out[i] are svcs[i]'s.
//
// For many services, unless tunnels is set, it reads /proc/net/ip_vs, the whole table in one pass:
// it carries the fields tunplan compares for an IPIP tunnel (address, port, forwarding method,
// weight), not the thresholds, which tunplan neither sets nor reads, nor the tunnel type, port and
// flags, which then read as IPIP. Services it does not list in a form parsed here (a firewall mark
// that an IPv4 and an IPv6 service share: its lines do not say which is which), and every service
// when tunnels is set, are dumped over netlink: one dump per service, spread over a few sockets,
// since a socket runs one dump at a time (the kernel refuses a second while one is unfinished).
func (cl *Client) Destinations(svcs []cipvs.Service, tunnels bool) ([][]cipvs.Destination, error) {
	out := make([][]cipvs.Destination, len(svcs))
	if cl.proc != "" && len(svcs) >= procMin && !tunnels {
		table, err := readProc(cl.proc)
		if err != nil {
			return nil, err
		}
		var rest []cipvs.Service
		var at []int
		for i, s := range svcs {
			ds, ok := table[procKeyOf(s)]
			if !ok {
				rest = append(rest, s)
				at = append(at, i)
				continue
			}
			out[i] = ds
		}
		ds, err := dumpDests(cl, rest, decodeDest)
		for j, i := range at {
			out[i] = ds[j]
		}
		return out, err
	}
	return dumpDests(cl, svcs, decodeDest)
}

// Counters dumps the destinations of each service with their counters: out[i] are svcs[i]'s. It
// reads over netlink whatever the table's size: /proc/net/ip_vs has no totals.
func (cl *Client) Counters(svcs []cipvs.Service) ([][]cipvs.DestinationExtended, error) {
	return dumpDests(cl, svcs, decodeDestExtended)
}

// dumpDests dumps the destinations of each service over netlink, each answer read by decode:
// out[i] are svcs[i]'s.
func dumpDests[D any](cl *Client, svcs []cipvs.Service, decode func([]byte, cipvs.AddressFamily) (D, error)) ([][]D, error) {
	out := make([][]D, len(svcs))
	if len(svcs) == 0 {
		return out, nil
	}
	n := min(readers, (len(svcs)+15)/16)
	for len(cl.extra) < n-1 {
		c, err := cl.dial()
		if err != nil {
			return nil, err
		}
		cl.extra = append(cl.extra, c)
	}
	conns := append([]conn{cl.c}, cl.extra...)[:max(n, 1)]
	errs := make([]error, len(svcs))
	base := cl.seq
	cl.seq += uint32(len(svcs))
	var wg sync.WaitGroup
	for w, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := cl.buf
			if w > 0 {
				buf = make([]byte, len(cl.buf))
			}
			for i := w; i < len(svcs); i += len(conns) {
				var ds []D
				errs[i] = cl.dump(c, buf, base+1+uint32(i), getDest, &svcs[i], func(a []byte) error {
					d, err := decode(a, svcs[i].Family)
					ds = append(ds, d)
					return err
				})
				out[i] = ds
				if errs[i] != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("list destinations of %s: %w", svcName(svcs[i]), err)
		}
	}
	return out, nil
}

// svcName names a service in errors and in the tests' fake kernel, by its identity in IPVS:
// "TCP/198.18.48.180:80", "TCP/[2001:db8::180]:80", "fwmark/1" (IPv4), "fwmark6/1" (IPv6).
func svcName(s cipvs.Service) string {
	switch {
	case s.FWMark != 0 && s.Family == cipvs.INET6:
		return fmt.Sprintf("fwmark6/%d", s.FWMark)
	case s.FWMark != 0:
		return fmt.Sprintf("fwmark/%d", s.FWMark)
	}
	return fmt.Sprintf("%s/%s", s.Protocol, netip.AddrPortFrom(s.Address, s.Port))
}

// Queue adds a write to the batch and sends the batch when it is full. A failure it reports is
// the first one since the last Flush (possibly of an earlier write); later writes are then not
// sent until Flush or Queue has reported it.
func (cl *Client) Queue(w Write) error {
	if cl.err != nil {
		return cl.takeErr()
	}
	if len(cl.pending) == 0 {
		cl.first = cl.seq + 1
	}
	cl.lastOff = len(cl.batch)
	cl.batch = appendWrite(cl.batch, cl.family, flagRequest, cl.nextSeq(), w)
	cl.pending = append(cl.pending, w)
	if len(cl.pending) >= cl.limMsgs || len(cl.batch) >= cl.limB {
		cl.send()
		return cl.takeErr()
	}
	return nil
}

// Flush sends what is queued, waits until every request was answered and returns the first
// failure, naming its object.
func (cl *Client) Flush() error {
	if len(cl.pending) > 0 {
		cl.send()
	}
	return cl.takeErr()
}

func (cl *Client) takeErr() error {
	err := cl.err
	cl.err = nil
	return err
}

func (cl *Client) fail(err error) {
	if cl.err == nil {
		cl.err = err
	}
}

// send sends the batch in one sendmsg with NLM_F_ACK on its last request, then reads answers
// until that acknowledgement, recording the first failure.
func (cl *Client) send() {
	b, pending, first := cl.batch, cl.pending, cl.first
	cl.batch, cl.pending = cl.batch[:0], nil
	last := first + uint32(len(pending)) - 1
	binary.NativeEndian.PutUint16(b[cl.lastOff+6:], flagRequest|flagAck) // the flags of its header
	if err := cl.c.Send(b); err != nil {
		cl.fail(fmt.Errorf("ipvs: send %d requests (%s ... %s): %w", len(pending), pending[0].Name, pending[len(pending)-1].Name, err))
		return
	}
	block := true
	for {
		n, err := cl.c.Recv(cl.buf, block)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if errors.Is(err, syscall.EAGAIN) && !block {
			cl.fail(fmt.Errorf("ipvs: %d requests (%s ... %s): the kernel's answers were lost (socket receive buffer overrun)", len(pending), pending[0].Name, pending[len(pending)-1].Name))
			return
		}
		if errors.Is(err, syscall.ENOBUFS) {
			// Answers were dropped: the acknowledgement may be among them; drain what is there.
			block = false
			continue
		}
		if err != nil {
			cl.fail(fmt.Errorf("ipvs: netlink receive: %w", err))
			return
		}
		msgs, err := parseMessages(cl.buf[:n])
		if err != nil {
			cl.fail(err)
			return
		}
		for _, m := range msgs {
			if m.typ != nlmsgError || m.seq < first || m.seq > last {
				continue
			}
			code, _, err := errorCode(m)
			if err != nil {
				cl.fail(err)
			} else if code != 0 {
				w := pending[m.seq-first]
				cl.fail(fmt.Errorf("ipvs: %s: %w", w.Name, code))
			}
			if m.seq == last {
				if !block {
					cl.fail(fmt.Errorf("ipvs: %d requests (%s ... %s): some of the kernel's answers were lost (socket receive buffer overrun)", len(pending), pending[0].Name, pending[len(pending)-1].Name))
				}
				return
			}
		}
	}
}

// socket is a generic netlink socket.
type socket struct{ fd int }

func dialSocket() (conn, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, syscall.NETLINK_GENERIC)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("bind", err)
	}
	const solNetlink, netlinkCapAck = 270, 10
	// Failures answer with the failing request's header only, not its whole payload.
	_ = syscall.SetsockoptInt(fd, solNetlink, netlinkCapAck, 1)
	// Root may exceed net.core.[rw]mem_max (SO_*BUFFORCE); otherwise take what is allowed.
	if syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_SNDBUFFORCE, sendBuf) != nil {
		_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF, sendBuf)
	}
	if syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, recvBuf) != nil {
		_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, recvBuf)
	}
	return &socket{fd}, nil
}

func (s *socket) Send(b []byte) error {
	for {
		err := syscall.Sendto(s.fd, b, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK})
		if err != syscall.EINTR {
			return err
		}
	}
}

func (s *socket) Recv(buf []byte, block bool) (int, error) {
	flags := 0
	if !block {
		flags = syscall.MSG_DONTWAIT
	}
	for {
		n, _, err := syscall.Recvfrom(s.fd, buf, flags)
		if err != syscall.EINTR {
			return n, err
		}
	}
}

func (s *socket) Close() error { return syscall.Close(s.fd) }
