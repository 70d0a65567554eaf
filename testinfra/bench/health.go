package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tunplan/tunplan/modules/protocol"
	"github.com/tunplan/tunplan/testinfra/lab"
)

// The health benchmark compares the director's watcher with keepalived's TCP_CHECK on the same
// lab, one after the other, on the same schedule (a check of each realserver every second, out
// after two failures, 500 ms to answer; keepalived: delay_loop 1, connect_timeout 1, retry 1,
// delay_before_retry 1):
//   - a realserver's nginx stopped under a client's ten requests a second: the time until the
//     realserver is out of the service (weight 0; keepalived: removed), and the requests that failed;
//   - nginx rebound to the RIP only (the tunnel path broken, the RIP fine): the requests that fail
//     in the 10 s after;
//   - the checker's CPU with 1,000 destinations checked every 2 s (500 services of both
//     realservers), as a share of one vCPU over 30 s.

const (
	healthWindow = 10 * time.Second // how long requests are counted after a fault
	cpuWindow    = 30 * time.Second
	cpuServices  = 500 // × 2 realservers: 1,000 checked destinations
	webService   = "-t " + lab.VIP + ":80"
)

// checker is one of the two checkers compared: how to set it up on the lab (reset before), how it
// shows a realserver out of the service, and how to stop it.
type checker struct {
	name  string
	setup func(bin, dir string) error
	stop  func()
	out   func(ipvsadm string) bool // rs2 is out of the VIP's service
}

var checkers = []checker{
	{name: "tunplan", setup: watcherSetup, stop: stopWatcher, out: func(t string) bool { w, ok := rs2Weight(t); return ok && w == "0" }},
	{name: "keepalived", setup: keepalivedSetup, stop: stopKeepalived, out: func(t string) bool { _, ok := rs2Weight(t); return !ok }},
}

// rs2Weight is rs2's weight in the VIP's service of an `ipvsadm -Sn` table, and whether it is there.
func rs2Weight(table string) (string, bool) {
	for _, l := range strings.Split(table, "\n") {
		f := strings.Fields(l) // -a -t VIP:80 -r RIP:80 -i -w 1 [--tun-type ipip]
		if len(f) >= 8 && strings.Join(f[:5], " ") == "-a "+webService+" -r "+lab.RS2IP+":80" && f[6] == "-w" {
			return f[7], true
		}
	}
	return "", false
}

func benchHealth(b *Bench) error {
	bin := os.Getenv("TUNPLAN_BIN")
	if bin == "" {
		return fmt.Errorf("TUNPLAN_BIN is not set")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir := filepath.Join(lab.RunDir(), "health")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	type figures struct{ detect, failed, ripOnly []float64 }
	got := map[string]*figures{}
	for _, c := range checkers {
		f := &figures{}
		got[c.name] = f
		for run := 0; run < b.Runs; run++ {
			detect, failed, err := stopNginx(c, bin, dir, self)
			if err != nil {
				return fmt.Errorf("%s, nginx stopped: %w", c.name, err)
			}
			ripOnly, err := nginxOnRIP(c, bin, dir, self)
			if err != nil {
				return fmt.Errorf("%s, nginx on the RIP only: %w", c.name, err)
			}
			fmt.Printf("bench:   %s run %d: out after %.2fs, %d requests failed; RIP only: %d failed in %v\n", c.name, run+1, detect, failed, ripOnly, healthWindow)
			f.detect, f.failed, f.ripOnly = append(f.detect, detect), append(f.failed, float64(failed)), append(f.ripOnly, float64(ripOnly))
		}
	}
	tp, ka := got["tunplan"], got["keepalived"]
	b.set("health_detect_s", middle(tp.detect))
	b.set("keepalived_detect_s", middle(ka.detect))
	b.set("health_failed_requests", middle(tp.failed))
	b.set("keepalived_failed_requests", middle(ka.failed))
	b.set("health_rip_only_failed_requests", middle(tp.ripOnly))
	b.set("keepalived_rip_only_failed_requests", middle(ka.ripOnly))
	const peer = "keepalived TCP_CHECK of the RIP"
	b.row(Row{What: "realserver's nginx stopped: time until it is out (check every 1 s, out after 2 failures)", Unit: "s", Tunplan: middle(tp.detect), Peer: peer, PeerValue: middle(ka.detect)})
	b.row(Row{What: "realserver's nginx stopped: client requests failed (10 a second)", Unit: "requests", Tunplan: middle(tp.failed), Peer: peer, PeerValue: middle(ka.failed)})
	b.row(Row{What: fmt.Sprintf("nginx rebound to the RIP only: client requests failed in %v (10 a second)", healthWindow), Unit: "requests", Tunplan: middle(tp.ripOnly), Peer: peer, PeerValue: middle(ka.ripOnly)})

	watcher, keepalived, err := checkerCPU(bin, dir)
	if err != nil {
		return err
	}
	b.set("health_cpu_1000", watcher)
	b.set("keepalived_cpu_1000", keepalived)
	b.row(Row{What: fmt.Sprintf("checker's CPU, %d destinations checked every 2 s (share of one vCPU over %v)", 2*cpuServices, cpuWindow), Unit: "vCPU",
		Tunplan: watcher, Peer: "keepalived's checker (TCP_CHECK)", PeerValue: keepalived, Target: "< 0.05"})
	return nil
}

// stopNginx sets c up, stops rs2's nginx under the client's requests, and returns how long c took
// to take rs2 out and how many requests failed from the stop until healthWindow after.
func stopNginx(c checker, bin, dir, self string) (float64, int, error) {
	if err := c.setup(bin, dir); err != nil {
		return 0, 0, err
	}
	defer c.stop()
	loop, err := lab.StartLoop(self, "http://"+lab.VIP+"/", time.Minute)
	if err != nil {
		return 0, 0, err
	}
	time.Sleep(2 * time.Second)
	stopped := time.Now()
	if out, err := lab.Sh("rs2", nginxCmd+" -s stop"); err != nil {
		return 0, 0, fmt.Errorf("stop nginx: %w: %s", err, out)
	}
	defer lab.Sh("rs2", nginxCmd)
	var outAt time.Time
	for end := stopped.Add(30 * time.Second); outAt.IsZero(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			return 0, 0, fmt.Errorf("rs2 is still in the service 30 s after its nginx stopped")
		}
		if t, err := lab.Sh("director", "ipvsadm -Sn"); err == nil && c.out(t) {
			outAt = time.Now()
		}
	}
	time.Sleep(time.Until(stopped.Add(healthWindow)))
	results, err := loop()
	if err != nil {
		return 0, 0, err
	}
	return outAt.Sub(stopped).Seconds(), failedAfter(results, stopped), nil
}

// nginxOnRIP sets c up, rebinds rs2's nginx to its RIP only under the client's requests, and
// returns how many requests failed in the healthWindow after.
func nginxOnRIP(c checker, bin, dir, self string) (int, error) {
	if err := c.setup(bin, dir); err != nil {
		return 0, err
	}
	defer c.stop()
	loop, err := lab.StartLoop(self, "http://"+lab.VIP+"/", time.Minute)
	if err != nil {
		return 0, err
	}
	time.Sleep(2 * time.Second)
	faulted := time.Now()
	rebind := "sed 's/listen 0.0.0.0:80;/listen " + lab.RS2IP + ":80;/; /listen \\[::\\]:80;/d' /lab/rs2/nginx.conf > /tmp/nginx-rip.conf && " +
		nginxCmd + " -s stop && while [ -e /run/nginx.pid ]; do sleep 0.05; done && /usr/sbin/nginx -e /var/log/nginx/error.log -c /tmp/nginx-rip.conf"
	if out, err := lab.Sh("rs2", rebind); err != nil {
		return 0, fmt.Errorf("rebind nginx: %w: %s", err, out)
	}
	defer lab.Sh("rs2", "/usr/sbin/nginx -e /var/log/nginx/error.log -c /tmp/nginx-rip.conf -s stop; while [ -e /run/nginx.pid ]; do sleep 0.05; done; "+nginxCmd)
	time.Sleep(time.Until(faulted.Add(healthWindow)))
	results, err := loop()
	if err != nil {
		return 0, err
	}
	return failedAfter(results, faulted), nil
}

// nginxCmd runs rs2's nginx with the lab's configuration.
const nginxCmd = "/usr/sbin/nginx -e /var/log/nginx/error.log -c /lab/rs2/nginx.conf"

// failedAfter counts the requests sent from from on that failed.
func failedAfter(results []lab.LoopResult, from time.Time) int {
	n := 0
	for _, r := range results {
		if !r.At.Before(from) && r.Result != "ok" {
			n++
		}
	}
	return n
}

// healthPlan is the two-region plan of the lab, its web service checked (tcp, every interval,
// timeout, out after 2 failures) when check is set, and with extra services on VIPs of their own
// (198.18.56.0 on), each over both realservers and checked the same way.
func healthPlan(check bool, interval, timeout string, extra int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `ssh {
  user          = "root"
  identity_file = %q
  known_hosts   = %q
}
host "lvs01" {
  role    = "director"
  address = %q
  ssh { host = %q }
}
host "shanghai" {
  role    = "realserver"
  address = %q
  ssh { host = %q }
}
host "beijing" {
  role    = "realserver"
  address = %q
  ssh { host = %q }
}
`, lab.SSHKey(), lab.KnownHosts(), lab.DirectorIP, lab.DirectorMgmt, lab.RS1IP, lab.RS1Mgmt, lab.RS2IP, lab.RS2Mgmt)
	hc := ""
	if check {
		hc = fmt.Sprintf("  health_check {\n    interval = %q\n    timeout  = %q\n    fall     = 2\n  }\n", interval, timeout)
	}
	service := func(name, vip string) {
		fmt.Fprintf(&b, "virtual_service %q {\n  vip       = %q\n  port      = 80\n  scheduler = \"rr\"\n  directors = [\"lvs01\"]\n  realserver \"shanghai\" {}\n  realserver \"beijing\" {}\n%s}\n", name, vip, hc)
	}
	service("web", lab.VIP)
	for i := 0; i < extra; i++ {
		service(fmt.Sprintf("web%03d", i), extraVIP(i))
	}
	return b.String()
}

// extraVIP is the i-th extra service's VIP: 198.18.56.0 on, past the lab's own addresses.
func extraVIP(i int) string { return fmt.Sprintf("198.18.%d.%d", 56+i/256, i%256) }

// applyPlan resets the lab and applies plan (written to dir) with tunplan.
func applyPlan(bin, dir, name, plan string) error {
	if err := lab.Reset(); err != nil {
		return err
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(plan), 0o644); err != nil {
		return err
	}
	if out, err := run(bin, "apply", "-f", p, "--auto-approve"); err != nil {
		return fmt.Errorf("tunplan apply: %w\n%s", err, out)
	}
	return nil
}

// watcherSetup applies the plan with its web service checked, and waits until the watcher reports
// both realservers healthy.
func watcherSetup(bin, dir string) error {
	if err := applyPlan(bin, dir, "checked.hcl", healthPlan(true, "1s", "500ms", 0)); err != nil {
		return err
	}
	return waitHealthy(2, 30*time.Second)
}

// waitHealthy waits until the watcher reports n destinations healthy.
func waitHealthy(n int, limit time.Duration) error {
	var out string
	for end := time.Now().Add(limit); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		out, _ = lab.Sh("director", "cat "+protocol.HealthFile)
		if strings.Count(out, `"healthy":true`) == n {
			return nil
		}
	}
	return fmt.Errorf("the watcher does not report %d destinations healthy within %v: %.500s", n, limit, out)
}

func stopWatcher() {
	lab.Sh("director", "pkill -f '^"+protocol.HelperPath+" watch$'; while pgrep -f '^"+protocol.HelperPath+" watch$' >/dev/null; do sleep 0.1; done")
}

// keepalivedSetup applies the plan without checks, hands the web service over to keepalived (its
// own virtual_server on the VIP, TCP_CHECK of each RIP) and waits until it has both realservers.
func keepalivedSetup(bin, dir string) error {
	if err := applyPlan(bin, dir, "plain.hcl", healthPlan(false, "", "", 0)); err != nil {
		return err
	}
	if out, err := lab.Sh("director", "ipvsadm -D "+webService); err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	conf := "global_defs {\n  router_id bench\n}\n" + keepalivedService(lab.VIP, "1", "1")
	if err := startKeepalived(dir, conf); err != nil {
		return err
	}
	return waitDests("-a "+webService+" -r ", 2, 30*time.Second)
}

// keepalivedService is a virtual_server of VIP:80 over both realservers, each checked by TCP_CHECK
// of its RIP every delay seconds with a connect timeout of timeout seconds, one retry after a second.
func keepalivedService(vip, delay, timeout string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "virtual_server %s 80 {\n  delay_loop %s\n  lb_algo rr\n  lb_kind TUN\n  protocol TCP\n", vip, delay)
	for _, rip := range []string{lab.RS1IP, lab.RS2IP} {
		fmt.Fprintf(&b, "  real_server %s 80 {\n    weight 1\n    TCP_CHECK {\n      connect_timeout %s\n      retry 1\n      delay_before_retry 1\n    }\n  }\n", rip, timeout)
	}
	b.WriteString("}\n")
	return b.String()
}

// startKeepalived starts keepalived's checker on the director with conf (written to dir).
func startKeepalived(dir, conf string) error {
	p := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
		return err
	}
	out, err := lab.Sh("director", "setsid /usr/sbin/keepalived --dont-fork --check --use-file "+p+
		" --pid /tmp/ka.pid --checkers_pid /tmp/ka-checkers.pid --vrrp_pid /tmp/ka-vrrp.pid >/tmp/keepalived.log 2>&1 </dev/null & echo $! >/tmp/keepalived.pid")
	if err != nil {
		return fmt.Errorf("keepalived: %w: %s", err, out)
	}
	return nil
}

func stopKeepalived() {
	lab.Sh("director", "kill $(cat /tmp/keepalived.pid); while kill -0 $(cat /tmp/keepalived.pid) 2>/dev/null; do sleep 0.1; done")
}

// waitDests waits until the director's IPVS table has n destination lines starting with prefix.
func waitDests(prefix string, n int, limit time.Duration) error {
	var t string
	for end := time.Now().Add(limit); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		t, _ = lab.Sh("director", "ipvsadm -Sn")
		if strings.Count(t, prefix) == n {
			return nil
		}
	}
	return fmt.Errorf("the director's table does not have %d of %q within %v:\n%.2000s", n, prefix, limit, t)
}

// checkerCPU measures each checker with 1,000 destinations checked every 2 s: tunplan's watcher
// (the plan's extra services checked), then keepalived's checker (the same services, TCP_CHECK of
// the RIPs, on VIPs of its own beside tunplan's unchecked ones).
func checkerCPU(bin, dir string) (watcher, keepalived float64, err error) {
	if err := applyPlan(bin, dir, "cpu.hcl", healthPlan(true, "2s", "1s", cpuServices-1)); err != nil {
		return 0, 0, err
	}
	if err := waitHealthy(2*cpuServices, 3*time.Minute); err != nil {
		return 0, 0, err
	}
	watcher, err = cpuShare("watcher", "pgrep -f '^"+protocol.HelperPath+" watch$'")
	stopWatcher()
	if err != nil {
		return 0, 0, fmt.Errorf("watcher: %w", err)
	}
	if err := applyPlan(bin, dir, "cpu-plain.hcl", healthPlan(false, "", "", cpuServices-1)); err != nil {
		return 0, 0, err
	}
	var conf strings.Builder
	conf.WriteString("global_defs {\n  router_id bench\n}\n")
	for i := 0; i < cpuServices; i++ {
		conf.WriteString(keepalivedService(fmt.Sprintf("198.18.%d.%d", 60+i/256, i%256), "2", "1"))
	}
	if err := startKeepalived(dir, conf.String()); err != nil {
		return 0, 0, err
	}
	defer stopKeepalived()
	if err := waitDests("-a -t 198.18.6", 2*cpuServices, 3*time.Minute); err != nil {
		return 0, 0, err
	}
	keepalived, err = cpuShare("keepalived", "cat /tmp/keepalived.pid /tmp/ka-checkers.pid")
	if err != nil {
		return 0, 0, fmt.Errorf("keepalived: %w", err)
	}
	return watcher, keepalived, nil
}

// cpuShare is the CPU the director's processes that pids lists used over cpuWindow, as a share of
// one vCPU (their user and system time in /proc/PID/stat, in clock ticks); it prints the two apart.
func cpuShare(what, pids string) (float64, error) {
	ticks := func() (user, system float64, err error) {
		out, err := lab.Sh("director", "for p in $("+pids+"); do cut -d' ' -f14,15 /proc/$p/stat; done; getconf CLK_TCK")
		if err != nil {
			return 0, 0, fmt.Errorf("%w: %s", err, out)
		}
		f := strings.Fields(out)
		if len(f) < 3 {
			return 0, 0, fmt.Errorf("no process: %q", out)
		}
		hz, _ := strconv.ParseFloat(f[len(f)-1], 64)
		for i, x := range f[:len(f)-1] {
			v, _ := strconv.ParseFloat(x, 64)
			if i%2 == 0 {
				user += v / hz
			} else {
				system += v / hz
			}
		}
		return user, system, nil
	}
	u0, s0, err := ticks()
	if err != nil {
		return 0, err
	}
	time.Sleep(cpuWindow)
	u1, s1, err := ticks()
	if err != nil {
		return 0, err
	}
	user, system := (u1-u0)/cpuWindow.Seconds(), (s1-s0)/cpuWindow.Seconds()
	fmt.Printf("bench:   %s: %.3f vCPU in user space, %.3f in the kernel\n", what, user, system)
	return user + system, nil
}
