// Command tunplan-helper is the privileged half of tunplan: uploaded to each host and run as root, it
// reads JSON requests on standard input, one per line, makes the kernel match each through netlink
// and /proc/sys, and writes one JSON response line for each on standard output.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/tunplan/tunplan/modules/files"
	"github.com/tunplan/tunplan/modules/fou"
	"github.com/tunplan/tunplan/modules/health"
	"github.com/tunplan/tunplan/modules/host"
	"github.com/tunplan/tunplan/modules/ipvs"
	"github.com/tunplan/tunplan/modules/kmod"
	"github.com/tunplan/tunplan/modules/nft"
	"github.com/tunplan/tunplan/modules/probe"
	"github.com/tunplan/tunplan/modules/protocol"
	"github.com/tunplan/tunplan/modules/route"
	"github.com/tunplan/tunplan/modules/sockets"
	"github.com/tunplan/tunplan/modules/sysctl"
)

// maxInput bounds what the helper reads in all: a run sends a host a few requests, and a plan for
// one host is far smaller.
const maxInput = 64 << 20

func main() {
	// The helper must finish (or restore) even when the SSH session that started it dies.
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)
	// It lives for one run: collecting garbage before its heap nears 128 MiB is wasted work (a
	// 10,000-destination load allocates 39 MB; `make bench` measured it 20% faster so).
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(128 << 20)
	if len(os.Args) > 1 && os.Args[1] == "--version" {
		fmt.Println("tunplan-helper", selfHash())
		return
	}
	// At boot (the restore units): the latest generation's state again, each change to the journal.
	if len(os.Args) > 1 && os.Args[1] == "restore" {
		late := len(os.Args) > 2 && os.Args[2] == "--late" // the unit after network-online.target
		if err := engine().Restore(os.Stdout, late); err != nil {
			fmt.Fprintln(os.Stderr, "tunplan-helper restore:", err)
			os.Exit(1)
		}
		return
	}
	// The watcher's unit (tunplan-watch.service): the director's health checks, until stopped.
	if len(os.Args) > 1 && os.Args[1] == "watch" {
		os.Exit(watch())
	}
	os.Exit(serve(io.LimitReader(os.Stdin, maxInput), os.Stdout, engine()))
}

// watch runs the director's health checks until SIGTERM or SIGINT, each change of health and
// weight written to standard output (the journal).
func watch() int {
	debug.SetGCPercent(100) // it runs for months: collect as usual
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	w := &health.Watcher{
		Config:       protocol.WatchConfig,
		Status:       protocol.HealthFile,
		Drains:       protocol.DrainFile,
		IPVS:         func() (ipvs.Kernel, error) { return ipvs.Open() },
		Log:          os.Stdout,
		Check:        health.Check,
		Every:        10 * time.Second,
		MetricsEvery: 15 * time.Second,
	}
	if err := w.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "tunplan-helper watch:", err)
		return 1
	}
	return 0
}

// handler is the engine as serve uses it.
type handler interface {
	Handle(protocol.Request) protocol.Response
	Delivered()
}

// serve answers requests until its input ends: a run sends a host its diff, then its apply (or
// rollback), over one SSH session. It returns the exit status: 0 at the end of the input, 2 after a
// request it could not read (answered with the error; the stream cannot be read further), 3 when
// nobody reads the answers any more (the outcome is recorded on the host for the next run).
func serve(in io.Reader, out io.Writer, h handler) int {
	dec := newDecoder(in)
	enc := json.NewEncoder(out)
	for {
		req, err := decode(dec)
		if errors.Is(err, io.EOF) {
			return 0
		}
		var resp protocol.Response
		if err != nil {
			resp.Error = err.Error()
		} else {
			resp = h.Handle(req)
		}
		if enc.Encode(resp) != nil {
			return 3
		}
		if err != nil {
			return 2
		}
		h.Delivered()
	}
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

// release is the running kernel's release, as uname -r prints it.
func release() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b)), err
}

func newDecoder(r io.Reader) *json.Decoder {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	return dec
}

// decode reads the next request; io.EOF (unwrapped by errors.Is) when the input ended before one.
func decode(dec *json.Decoder) (protocol.Request, error) {
	var req protocol.Request
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf("helper: bad request: %w", err)
	}
	return req, nil
}

func engine() *host.Engine {
	return &host.Engine{
		Dir:        protocol.StateDir,
		Kmod:       kmod.System{},
		Sysctl:     sysctl.Proc{},
		Tunnel:     &netlink.Handle{}, // the zero Handle opens a netlink socket per request
		MSS:        &netlink.Handle{},
		Fou:        fou.Netlink{},
		Nft:        nft.Netlink{},
		Release:    release,
		IPVS:       func() (ipvs.Kernel, error) { return ipvs.Open() },
		Sockets:    sockets.Proc{},
		Routes:     route.Netlink{},
		Probe:      probe.Probe,
		Files:      files.Root("/"),
		Helper:     protocol.HelperPath,
		Systemd:    systemdRuns,
		Watcher:    watcherControl,
		HealthFile: protocol.HealthFile,
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

// watcherControl starts (or restarts) or stops the director's watcher: through systemd where it
// runs the host, or else as a process of its own, detached from this session (there it does not
// come back after a reboot: the README says to run it from the host's init).
func watcherControl(start bool) error {
	if systemdRuns() {
		if err := systemctl("daemon-reload"); err != nil {
			return err
		}
		if start {
			return systemctl("restart", "tunplan-watch.service")
		}
		return systemctl("stop", "tunplan-watch.service")
	}
	stopWatchers()
	if !start {
		return nil
	}
	log, err := os.OpenFile(protocol.WatchLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(protocol.HelperPath, "watch")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // no SIGHUP when this session ends
	if err := cmd.Start(); err != nil {
		return err
	}
	return cmd.Process.Release()
}

// stopWatchers ends every watcher running on the host (a helper run as "watch"), and waits up to
// two seconds for them to go.
func stopWatchers() {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) == 2 && strings.HasPrefix(filepath.Base(args[0]), "tunplan-helper") && args[1] == "watch" {
			pids = append(pids, pid)
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
	}
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if !slices.ContainsFunc(pids, func(p int) bool { return syscall.Kill(p, 0) == nil }) {
			return
		}
	}
}

// systemctl runs systemctl with args; its error carries what systemctl said.
func systemctl(args ...string) error {
	out, err := exec.Command("systemctl", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// systemdRuns tells whether systemd is the host's init, as sd_booted(3) does.
func systemdRuns() bool {
	st, err := os.Stat("/run/systemd/system")
	return err == nil && st.IsDir()
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
