package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tunplan/tunplan/testinfra/lab"
)

// keepalivedVIP is the address of the service keepalived keeps beside tunplan's: its own, so the
// two never touch each other's IPVS service. No traffic goes to it; only its checks matter.
const keepalivedVIP = "198.18.48.199"

// keepalivedConfig is keepalived's TCP_CHECK of both realservers as operators write it: a connect
// to RIP:80 (its default connect_ip) every second, one retry.
func keepalivedConfig() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "global_defs {\n  router_id side_by_side\n}\nvirtual_server %s 80 {\n  delay_loop 1\n  lb_algo rr\n  lb_kind TUN\n  protocol TCP\n", keepalivedVIP)
	for _, rip := range []string{rip1, rip2} {
		fmt.Fprintf(&sb, "  real_server %s 80 {\n    weight 1\n    TCP_CHECK {\n      connect_timeout 1\n      retry 1\n      delay_before_retry 1\n    }\n  }\n", rip)
	}
	sb.WriteString("}\n")
	return sb.String()
}

// startKeepalived runs keepalived's checker on the director with keepalivedConfig, until the test
// ends. It logs to syslog, which the lab does not run: its IPVS service is what it says.
func startKeepalived(t *testing.T) {
	t.Helper()
	conf := filepath.Join(lab.RunDir(), "keepalived.conf")
	if err := os.WriteFile(conf, []byte(keepalivedConfig()), 0o644); err != nil {
		t.Fatal(err)
	}
	sh(t, "director", "setsid /usr/sbin/keepalived --dont-fork --check --use-file "+conf+
		" --pid /tmp/ka.pid --checkers_pid /tmp/ka-checkers.pid --vrrp_pid /tmp/ka-vrrp.pid >/tmp/keepalived.log 2>&1 </dev/null & echo $! >/tmp/keepalived.pid")
	t.Cleanup(func() {
		if t.Failed() {
			table, _ := lab.Sh("director", "cat /tmp/keepalived.log; ipvsadm -Ln")
			t.Logf("keepalived's output and the director's IPVS table:\n%s", table)
		}
		lab.Sh("director", "kill $(cat /tmp/keepalived.pid); for i in $(seq 50); do kill -0 $(cat /tmp/keepalived.pid) 2>/dev/null || break; sleep 0.2; done; ipvsadm -D -t "+keepalivedVIP+":80 2>/dev/null; true")
	})
}

// TestCheckersSideBySide: tunplan's checks go through the tunnel, keepalived's TCP_CHECK goes to
// the RIP. With both running on the director, each fault verify knows is injected on beijing
// (rs2): tunplan holds it at weight 0 for every one; keepalived takes it out of its service only
// when nginx is stopped or the route back to the director is gone (its own check's replies are
// lost too), and keeps sending clients to it for the four faults of the tunnel path. The table of
// both is printed.
func TestCheckersSideBySide(t *testing.T) {
	reset(t)
	plan := planVariant(t, example, "  scheduler = \"rr\"\n",
		"  scheduler = \"rr\"\n  health_check {\n    interval = \"1s\"\n    timeout  = \"500ms\"\n    fall     = 2\n  }\n")
	mustTunplan(t, plan, 0, "apply", "--auto-approve")
	stopWatcherAfter(t)
	waitHealthy(t)
	startKeepalived(t)
	ka := "-t " + keepalivedVIP + ":80"
	for _, rip := range []string{rip1, rip2} {
		waitWeight(t, ka, rip, "1", 20*time.Second)
	}

	faults := []struct {
		name    string
		inject  func(t *testing.T) func()
		kaCatch bool // keepalived's check of the RIP fails too
	}{
		{"nginx stopped", func(t *testing.T) func() {
			restartNginx(t, "rs2", "")
			return func() { restartNginx(t, "rs2", nginxConf("rs2")) }
		}, true},
		{"nginx bound to the RIP only", func(t *testing.T) func() { return nginxOnRIP(t, "rs2", rip2) }, false},
		{"rp_filter=1 on all", byHand("echo 1 > /proc/sys/net/ipv4/conf/all/rp_filter", "echo 0 > /proc/sys/net/ipv4/conf/all/rp_filter"), false},
		{"VIP removed from tunl0", byHand("ip addr del "+vip+"/32 dev tunl0", "ip addr add "+vip+"/32 brd "+vip+" dev tunl0"), false},
		{"tunl0 down", byHand("ip link set tunl0 down", "ip link set tunl0 up"), false},
		{"route back to the director blackholed", byHand("ip route add blackhole "+director+"/32", "ip route del blackhole "+director+"/32"), true},
	}
	var table strings.Builder
	fmt.Fprintf(&table, "%-40s %-32s %s\n", "fault on beijing", "tunplan (through the tunnel)", "keepalived TCP_CHECK (RIP)")
	for _, f := range faults {
		injected := time.Now()
		undo := f.inject(t)
		held := waitWeight(t, web, rip2, "0", 10*time.Second)
		tp := fmt.Sprintf("held at 0 after %.1fs", held.Sub(injected).Seconds())
		// keepalived checks every second, waits a second for a connection and retries once after a
		// second: at most about 4 s to remove it (a fault that answers nothing takes longest); 8 s is
		// twice that.
		kaSeen := "missed: still weight 1 after 8s"
		for end := injected.Add(8 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			if weightIn(t, ka, rip2) == "" {
				kaSeen = fmt.Sprintf("removed after %.1fs", time.Since(injected).Seconds())
				break
			}
		}
		fmt.Fprintf(&table, "%-40s %-32s %s\n", f.name, tp, kaSeen)
		if caught := !strings.HasPrefix(kaSeen, "missed"); caught != f.kaCatch {
			t.Errorf("%s: keepalived %s, want caught=%v", f.name, kaSeen, f.kaCatch)
		}
		if w := weightIn(t, web, rip1); w != "1" {
			t.Errorf("%s: shanghai's weight %s, want 1", f.name, w)
		}
		undo()
		waitWeight(t, web, rip2, "1", 10*time.Second)
		waitWeight(t, ka, rip2, "1", 10*time.Second)
	}
	t.Logf("side by side, the same faults:\n%s", table.String())
}

// byHand is a fault injected on rs2 by a command, undone by another.
func byHand(inject, undo string) func(t *testing.T) func() {
	return func(t *testing.T) func() {
		sh(t, "rs2", inject)
		return func() { sh(t, "rs2", undo) }
	}
}
