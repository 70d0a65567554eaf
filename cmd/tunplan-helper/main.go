// Command tunplan-helper is the privileged half of tunplan: uploaded to each host and run as root, it
// reads one JSON request on standard input, makes the kernel match it through netlink and /proc/sys,
// and writes one JSON response on standard output.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/vishvananda/netlink"

	"github.com/tunplan/tunplan/modules/host"
	"github.com/tunplan/tunplan/modules/ipvs"
	"github.com/tunplan/tunplan/modules/kmod"
	"github.com/tunplan/tunplan/modules/sysctl"
)

// maxRequest bounds what the helper reads: a plan for one host is far smaller.
const maxRequest = 64 << 20

func main() {
	// The helper must finish (or restore) even when the SSH session that started it dies.
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)
	// It lives for one request: collecting garbage before its heap nears 128 MiB is wasted work (a
	// 10,000-destination load allocates 39 MB; `make bench` measured it 20% faster so).
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(128 << 20)
	if len(os.Args) > 1 && os.Args[1] == "--version" {
		fmt.Println("tunplan-helper", selfHash())
		return
	}
	req, err := decode(io.LimitReader(os.Stdin, maxRequest))
	var resp host.Response
	e := engine()
	if err != nil {
		resp = host.Response{Error: err.Error()}
	} else {
		resp = e.Handle(req)
	}
	if err := json.NewEncoder(os.Stdout).Encode(resp); err != nil {
		// Nobody is listening any more; the outcome is recorded on the host for the next run.
		os.Exit(3)
	}
	e.Delivered()
}

// session is the SSH connection the helper runs under: the CLI passes "$SSH_CONNECTION" as
// --ssh-connection (sudo drops it from the environment), and the route back to the client names
// the device its replies leave by.
func session() *host.Session {
	v := os.Getenv("SSH_CONNECTION")
	for i, a := range os.Args {
		if a == "--ssh-connection" && i+1 < len(os.Args) {
			v = os.Args[i+1]
		}
	}
	s := host.ParseSession(v)
	if s == nil {
		return nil
	}
	if routes, err := netlink.RouteGet(s.Client.Addr().AsSlice()); err == nil && len(routes) > 0 {
		if l, err := netlink.LinkByIndex(routes[0].LinkIndex); err == nil {
			s.Device = l.Attrs().Name
		}
	}
	return s
}

func decode(r io.Reader) (host.Request, error) {
	var req host.Request
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf("helper: bad request: %w", err)
	}
	return req, nil
}

func engine() *host.Engine {
	return &host.Engine{
		Dir:        "/var/lib/tunplan",
		SysctlFile: "/etc/sysctl.d/99-tunplan.conf",
		Kmod:       kmod.System{},
		Sysctl:     sysctl.Proc{},
		Tunnel:     &netlink.Handle{}, // the zero Handle opens a netlink socket per request
		IPVS:       func() (ipvs.Kernel, error) { return ipvs.Open() },
		Session:    session(),
		Open:       established,
		FaultAt:    faultAt(),
		FaultDelay: faultDelay(),
	}
}

// established tells, by a sock_diag query, whether the session's TCP connection is still open here.
func established(s *host.Session) bool {
	sk, err := netlink.SocketGet(net.TCPAddrFromAddrPort(s.Server), net.TCPAddrFromAddrPort(s.Client))
	return err == nil && sk.State == tcpEstablished
}

const tcpEstablished = 1 // TCP_ESTABLISHED in include/net/tcp_states.h

func selfHash() string {
	b, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		return "unknown"
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
