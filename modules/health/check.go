// Package health is the director's watcher (`tunplan-helper watch`): it checks every destination
// of the checked services through the service's own tunnel, and holds a destination that fails at
// weight 0 until it passes again.
//
// A check is an ordinary Go client (net.Dialer, net/http) whose socket (TCP, or UDP for a udp
// check) carries the destination's probe mark (SO_MARK) and leaves from the director's own address
// for the VIP. The VIP is local, so the packet meets IPVS in the output path
// (ip_vs_local_request4), where the mark selects the probe service of that destination (a
// firewall-mark service whose one destination is that realserver, with the service's tunnel): IPVS
// wraps the check exactly as it wraps a client's packet. The realserver answers from the VIP,
// directly; the director takes that answer in because the plan sets accept_local (its source is a
// local address) and loose rp_filter on it.
package health

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tunplan/tunplan/modules/protocol"
)

// maxBody is how much of an HTTP answer a check reads: enough for any expect_body.
const maxBody = 64 << 10

// Check runs one check of destination d of c and returns nil when it passes, or why it fails. It
// gives up after c's timeout.
func Check(ctx context.Context, c protocol.HealthCheck, d protocol.CheckedDestination) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(c.TimeoutMS)*time.Millisecond)
	defer cancel()
	dl := dialer(d.Mark, c.Source)
	addr := netip.AddrPortFrom(c.VIP, c.Port).String()
	switch c.Type {
	case protocol.CheckTCP:
		conn, err := dl.DialContext(ctx, "tcp", addr)
		if err != nil {
			return short(err)
		}
		return conn.Close()
	case protocol.CheckUDP:
		return udpCheck(ctx, c, dl, addr)
	}
	return httpCheck(ctx, c, dl, addr)
}

// minQuoted is the most of a wrong UDP reply a failure quotes, unless the expected bytes are
// longer: then as many as they.
const minQuoted = 32

// udpCheck sends the service's probe datagram (Payload.Send) to addr and reads one reply until
// ctx's deadline, which must start with Payload.Expect (any reply does when it is empty). The
// socket is connected, so an ICMP port unreachable in answer fails the read with ECONNREFUSED.
func udpCheck(ctx context.Context, c protocol.HealthCheck, dl *net.Dialer, addr string) error {
	dl.LocalAddr = &net.UDPAddr{IP: c.Source.AsSlice()} // a UDP dial refuses dialer's TCPAddr ("mismatched local address type")
	conn, err := dl.DialContext(ctx, "udp", addr)
	if err != nil {
		return short(err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	// Only the reply's start matters: the kernel cuts a longer datagram to the buffer.
	reply := make([]byte, max(len(c.Payload.Expect), minQuoted))
	n := 0
	if _, err = conn.Write([]byte(c.Payload.Send)); err == nil {
		n, err = conn.Read(reply)
	}
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return errors.New("connection refused")
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("no reply within %s", time.Duration(c.TimeoutMS)*time.Millisecond)
	case err != nil:
		return short(err)
	case !strings.HasPrefix(string(reply[:n]), string(c.Payload.Expect)):
		return fmt.Errorf("reply %q does not start with %q", reply[:n], string(c.Payload.Expect))
	}
	return nil
}

// httpCheck sends GET path to addr (over TLS for https, the certificate unverified: the check is of
// the path, not of PKI) and checks the status and the body.
func httpCheck(ctx context.Context, c protocol.HealthCheck, dl *net.Dialer, addr string) error {
	host := c.Host
	if host == "" {
		host = c.VIP.String()
	}
	tr := &http.Transport{
		DialContext:       dl.DialContext,
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{ServerName: host, InsecureSkipVerify: true}, //nolint:gosec // see above
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	scheme := "http"
	if c.Type == protocol.CheckHTTPS {
		scheme = "https"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+addr+c.Path, nil)
	if err != nil {
		return err
	}
	req.Host = c.Host
	req.Header.Set("User-Agent", "tunplan-watch")
	resp, err := client.Do(req)
	if err != nil {
		return short(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("read body: %w", short(err))
	}
	if resp.StatusCode != c.ExpectStatus {
		return fmt.Errorf("status %d, want %d", resp.StatusCode, c.ExpectStatus)
	}
	if c.ExpectBody != "" && !strings.Contains(string(body), c.ExpectBody) {
		return fmt.Errorf("body lacks %s", strconv.Quote(c.ExpectBody))
	}
	return nil
}

// dialer makes sockets that carry mark and leave from source. A TCP check's socket is closed with
// a reset (SO_LINGER 0), as verify's probe is: no FIN exchange through the tunnel, no TIME_WAIT on
// the director, and IPVS forgets the connection in seconds (CLOSE) instead of minutes (TIME_WAIT),
// which at hundreds of checks a second keeps its connection table and timers small.
func dialer(mark uint32, source netip.Addr) *net.Dialer {
	return &net.Dialer{
		LocalAddr: &net.TCPAddr{IP: source.AsSlice()},
		Control: func(network, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
				if serr == nil && strings.HasPrefix(network, "tcp") {
					serr = unix.SetsockoptLinger(int(fd), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
				}
			}); err != nil {
				return err
			}
			return serr
		},
	}
}

// short is err without the addresses every check repeats ("dial tcp 198.18.48.181:0->…: connect:
// connection refused" is "connect: connection refused"); a deadline reads "no answer".
func short(err error) error {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return errors.New("no answer")
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return fmt.Errorf("%s: %w", oe.Op, oe.Err)
	}
	return err
}
