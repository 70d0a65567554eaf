package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	cipvs "github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"

	"github.com/tunplan/tunplan/modules/ipvs"
	"github.com/tunplan/tunplan/modules/protocol"
	"github.com/tunplan/tunplan/testinfra/lab"
)

// The 10,000-destination table: 1,000 virtual services (10 VIPs × 100 ports) × 10 tunnel
// destinations, all in 198.18.0.0/15. A destination's port is its service's, as ipvsadm makes it for
// tunnel (and direct routing) destinations whatever port it is given.
const (
	benchServices = 1000
	benchDests    = 10
	benchTotal    = benchServices * benchDests
)

func benchVIP(i int) (netip.Addr, uint16) {
	return netip.AddrFrom4([4]byte{198, 18, 100, byte(i / 100)}), uint16(10000 + i%100)
}

func benchRIP(j int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 200, byte(1 + j)}) }

// benchRequest is the helper's apply of the table; weight0 is the first destination's weight.
func benchRequest(weight0 uint32) protocol.Request {
	var svcs []protocol.Service
	for i := 0; i < benchServices; i++ {
		vip, port := benchVIP(i)
		s := protocol.Service{Protocol: "tcp", Address: vip, Port: port, Scheduler: "rr"}
		for j := 0; j < benchDests; j++ {
			s.Destinations = append(s.Destinations, protocol.Destination{Address: benchRIP(j), Port: port, Weight: 1, Forward: protocol.ForwardTunnel})
		}
		svcs = append(svcs, s)
	}
	svcs[0].Destinations[0].Weight = weight0
	return protocol.Request{Op: protocol.OpApply, Host: "director", Actor: "bench",
		Desired: protocol.State{Modules: []string{"ip_vs", "ip_vs_rr"}, Services: svcs}}
}

func ipvsadmRules() string {
	var sb strings.Builder
	for i := 0; i < benchServices; i++ {
		vip, port := benchVIP(i)
		vs := netip.AddrPortFrom(vip, port).String()
		fmt.Fprintf(&sb, "-A -t %s -s rr\n", vs)
		for j := 0; j < benchDests; j++ {
			fmt.Fprintf(&sb, "-a -t %s -r %s -i -w 1\n", vs, netip.AddrPortFrom(benchRIP(j), port))
		}
	}
	return sb.String()
}

func keepalivedConf() string {
	var sb strings.Builder
	sb.WriteString("global_defs {\n  router_id bench\n  lvs_flush\n}\n")
	for i := 0; i < benchServices; i++ {
		vip, port := benchVIP(i)
		fmt.Fprintf(&sb, "virtual_server %s %d {\n  lb_algo rr\n  lb_kind TUN\n  protocol TCP\n", vip, port)
		for j := 0; j < benchDests; j++ {
			fmt.Fprintf(&sb, "  real_server %s %d {\n    weight 1\n  }\n", benchRIP(j), port)
		}
		sb.WriteString("}\n")
	}
	return sb.String()
}

// benchIPVS measures, in the director, programming the 10,000-destination table into an empty IPVS
// table with tunplan's helper, ipvsadm-restore and keepalived, then the helper's no-op and
// one-change applies on the loaded table, one read of it by ipvsadm -Sn, and the helper's start.
func benchIPVS(b *Bench) error {
	dir := lab.RunDir()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	// The director has a private /tmp: give it the helper and this program (the timer) in the run's
	// directory, which every host sees.
	helper, timer := filepath.Join(dir, "tunplan-helper"), filepath.Join(dir, "bench-timer")
	if err := copyFile(os.Getenv("TUNPLAN_HELPER"), helper); err != nil {
		return fmt.Errorf("helper: %w", err)
	}
	if err := copyFile(self, timer); err != nil {
		return err
	}
	files := map[string]string{"rules.ipvsadm": ipvsadmRules(), "keepalived.conf": keepalivedConf()}
	for w, name := range map[uint32]string{1: "apply.json", 2: "apply-w2.json"} {
		j, err := json.Marshal(benchRequest(w))
		if err != nil {
			return err
		}
		files[name] = string(j)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	var ref map[string]bool
	clear := func() error {
		_, err := director("sh", "-c", "if [ -e /proc/net/ip_vs ]; then ipvsadm -C; fi; rm -rf /var/lib/tunplan")
		return err
	}
	defer clear()
	// helper runs the helper on a request and checks its answer.
	helper1 := func(req string, outcome protocol.Outcome, changes int) (float64, error) {
		out, secs, err := timed(timer, "run", p(req), helper)
		if err != nil {
			return 0, err
		}
		var resp protocol.Response
		if err := json.Unmarshal([]byte(out), &resp); err != nil {
			return 0, fmt.Errorf("helper answered %q: %w", out, err)
		}
		// The first load also loads ip_vs and ip_vs_rr.
		if resp.Error != "" || resp.Outcome != outcome || (len(resp.Changes) != changes && len(resp.Changes) != changes+2) {
			return 0, fmt.Errorf("helper: want %s with %d changes, got %s with %d changes, error %q", outcome, changes, resp.Outcome, len(resp.Changes), resp.Error)
		}
		return secs, nil
	}

	restore, err := b.median(func() (float64, error) {
		if err := clear(); err != nil {
			return 0, err
		}
		out, secs, err := timed(timer, "run", p("rules.ipvsadm"), "/sbin/ipvsadm-restore")
		if err != nil {
			return 0, fmt.Errorf("ipvsadm-restore: %w: %s", err, out)
		}
		return secs, nil
	})
	if err != nil {
		return fmt.Errorf("ipvsadm-restore: %w", err)
	}
	// ipvsadm-restore's table is the reference the helper's is compared with.
	if ref, err = table(); err != nil {
		return err
	}
	if len(ref) != benchServices+benchTotal {
		return fmt.Errorf("ipvsadm-restore made %d rules, want %d", len(ref), benchServices+benchTotal)
	}

	load, err := b.median(func() (float64, error) {
		if err := clear(); err != nil {
			return 0, err
		}
		return helper1("apply.json", protocol.Applied, benchServices+benchTotal)
	})
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	if err := checkTable(ref, 1); err != nil {
		return fmt.Errorf("after the helper's load: %w", err)
	}
	noop, err := b.median(func() (float64, error) { return helper1("apply.json", protocol.Unchanged, 0) })
	if err != nil {
		return fmt.Errorf("no-op: %w", err)
	}
	n := 0
	one, err := b.median(func() (float64, error) {
		n++
		req := map[bool]string{true: "apply-w2.json", false: "apply.json"}[n%2 == 1]
		return helper1(req, protocol.Applied, 1)
	})
	if err != nil {
		return fmt.Errorf("one change: %w", err)
	}
	if err := checkTable(ref, map[bool]uint32{true: 2, false: 1}[n%2 == 1]); err != nil {
		return fmt.Errorf("after the one-change applies: %w", err)
	}

	// What a no-op costs at the least: one read of the table (ipvsadm -Sn, the peer's dump), and
	// starting the helper process with nothing to do.
	dump, err := b.median(func() (float64, error) {
		out, secs, err := timed(timer, "run", "/dev/null", "/sbin/ipvsadm", "-Sn")
		if err == nil && strings.Count(out, "\n") != benchServices+benchTotal {
			err = fmt.Errorf("ipvsadm -Sn printed %d lines, want %d", strings.Count(out, "\n"), benchServices+benchTotal)
		}
		return secs, err
	})
	if err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	start, err := b.median(func() (float64, error) {
		_, secs, err := timed(timer, "run", "/dev/null", helper)
		return secs, err
	})
	if err != nil {
		return fmt.Errorf("helper start: %w", err)
	}

	keepalived, err := b.median(func() (float64, error) {
		if err := clear(); err != nil {
			return 0, err
		}
		out, secs, err := timed(timer, "keepalived", p("keepalived.conf"))
		if err != nil {
			return 0, fmt.Errorf("keepalived: %w: %s", err, out)
		}
		return secs, nil
	})
	if err != nil {
		return err
	}

	b.set("ipvs_load_10k_s", load)
	b.set("ipvsadm_restore_10k_s", restore)
	b.set("keepalived_load_10k_s", keepalived)
	b.set("ipvs_noop_10k_s", noop)
	b.set("ipvs_one_change_10k_s", one)
	b.set("ipvsadm_dump_10k_s", dump)
	b.set("helper_start_s", start)
	what := "1,000 services × 10 tunnel destinations into an empty IPVS table (helper process, wall time)"
	b.row(Row{What: what, Unit: "s", Tunplan: load, Peer: "ipvsadm-restore", PeerValue: restore, Target: "≤ 0.5×"})
	b.row(Row{What: what, Unit: "s", Tunplan: load, Peer: "keepalived (no checkers)", PeerValue: keepalived})
	b.row(Row{What: "same table, nothing to change (no-op apply)", Unit: "s", Tunplan: noop, Peer: "tunplan's full load", PeerValue: load, Target: "< 10% of a full load"})
	b.row(Row{What: "same table, one destination weight changed", Unit: "s", Tunplan: one, Peer: "tunplan's full load", PeerValue: load, Target: "< 10% of a full load"})
	b.row(Row{What: "same table, nothing to change (no-op apply)", Unit: "s", Tunplan: noop, Peer: "ipvsadm -Sn (one read of the table)", PeerValue: dump, Target: "about one dump"})
	b.row(Row{What: "starting the helper with no request (its fixed cost in every apply above)", Unit: "s", Tunplan: start})
	return nil
}

func director(argv ...string) (string, error) {
	out, err := lab.Exec("director", argv...)
	if err != nil {
		return out, fmt.Errorf("director: %v: %w: %s", argv, err, out)
	}
	return out, nil
}

// timed runs the timer in the director and returns what it printed after its first line, and the
// seconds it measured (its first line).
func timed(timer string, args ...string) (string, float64, error) {
	out, err := lab.Exec("director", append([]string{"env", "TUNPLAN_BENCH_TIMER=1", timer}, args...)...)
	first, rest, _ := strings.Cut(out, "\n")
	if err != nil {
		return out, 0, err
	}
	secs, err := strconv.ParseFloat(first, 64)
	if err != nil {
		return out, 0, fmt.Errorf("timer printed %q", out)
	}
	return rest, secs, nil
}

// table is the director's IPVS table as ipvsadm -Sn lines.
func table() (map[string]bool, error) {
	out, err := director("ipvsadm", "-Sn")
	if err != nil {
		return nil, err
	}
	rules := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		rules[strings.Join(strings.Fields(l), " ")] = true
	}
	return rules, nil
}

// checkTable compares the director's table with ref, ipvsadm-restore's, the first destination's
// weight being weight0.
func checkTable(ref map[string]bool, weight0 uint32) error {
	got, err := table()
	if err != nil {
		return err
	}
	vip, port := benchVIP(0)
	first := fmt.Sprintf("-a -t %s -r %s ", netip.AddrPortFrom(vip, port), netip.AddrPortFrom(benchRIP(0), port))
	for l := range ref {
		if strings.HasPrefix(l, first) {
			l = strings.Replace(l, " -w 1", fmt.Sprintf(" -w %d", weight0), 1)
		}
		if !got[l] {
			return fmt.Errorf("ipvsadm -Sn lacks %q", l)
		}
	}
	if len(got) != len(ref) {
		return fmt.Errorf("ipvsadm -Sn has %d rules, want %d", len(got), len(ref))
	}
	return nil
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o755)
}

// The timer runs inside the director (this program, started again with TUNPLAN_BENCH_TIMER=1), so
// that nothing but the measured process is timed:
//
//	run INPUT PROG ARGS...  runs PROG with INPUT on its standard input; prints the seconds, then its output
//	keepalived CONF         starts keepalived, waits until the IPVS table holds every destination,
//	                        prints the seconds, then stops it and waits (10 s at most) until it
//	                        removed its rules
func init() {
	if os.Getenv("TUNPLAN_BENCH_TIMER") != "1" {
		return
	}
	var err error
	switch {
	case len(os.Args) >= 4 && os.Args[1] == "run":
		err = timeRun(os.Args[2], os.Args[3:])
	case len(os.Args) == 3 && os.Args[1] == "keepalived":
		err = timeKeepalived(os.Args[2])
	default:
		err = fmt.Errorf("usage: run INPUT PROG ARGS... | keepalived CONF")
	}
	if err != nil {
		fmt.Println("bench timer:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func timeRun(input string, argv []string) error {
	in, err := os.Open(input)
	if err != nil {
		return err
	}
	defer in.Close()
	var out strings.Builder
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = in, &out, &out
	start := time.Now()
	err = cmd.Run()
	secs := time.Since(start).Seconds()
	if err != nil {
		return fmt.Errorf("%v: %w: %s", argv, err, out.String())
	}
	fmt.Printf("%.6f\n%s", secs, out.String())
	return nil
}

func timeKeepalived(conf string) error {
	run := filepath.Dir(conf)
	var log strings.Builder
	cmd := exec.Command("/usr/sbin/keepalived", "--dont-fork", "--check", "--use-file", conf,
		"--pid", filepath.Join(run, "keepalived.pid"), "--checkers_pid", filepath.Join(run, "keepalived-checkers.pid"),
		"--vrrp_pid", filepath.Join(run, "keepalived-vrrp.pid"))
	cmd.Stdout, cmd.Stderr = &log, &log
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Poll cheaply: the last service's destinations (one small dump) every 20 ms; keepalived adds
	// the services in the order of its configuration. Then count the whole table once.
	vip, port := benchVIP(benchServices - 1)
	last := cipvs.Service{Address: vip, Port: port, Protocol: cipvs.TCP, Family: cipvs.INET, Netmask: netmask.MaskFrom(32, 32)}
	var k *ipvs.Client
	var secs float64
	deadline := time.Now().Add(10 * time.Minute)
	for secs == 0 {
		select {
		case err := <-exited:
			return fmt.Errorf("keepalived exited before loading the table: %v\n%s", err, log.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			return fmt.Errorf("keepalived did not load the table in 10 minutes\n%s", log.String())
		}
		if k == nil {
			if k, _ = ipvs.Open(); k == nil {
				continue // ip_vs not loaded yet
			}
			defer k.Close()
		}
		ds, err := k.Destinations([]cipvs.Service{last}, false)
		if err != nil || len(ds[0]) < benchDests {
			continue
		}
		if n, err := countDests(); err == nil && n == benchTotal {
			secs = time.Since(start).Seconds()
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		return fmt.Errorf("keepalived did not stop\n%s", log.String())
	}
	// keepalived removes its rules as it stops, unless it runs out of time and kills its checker
	// process: the next run starts with ipvsadm -C anyway.
	for i := 0; i < 500; i++ {
		if n, err := countDests(); err != nil || n == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Printf("%.6f\n", secs)
	return nil
}

// countDests counts the destinations in /proc/net/ip_vs.
func countDests() (int, error) {
	f, err := os.Open("/proc/net/ip_vs")
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	return strings.Count(string(b), "  -> ") - 1, err // the header names the columns with "  -> "
}
