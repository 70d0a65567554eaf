package e2e

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tunplan/tunplan/modules/protocol"
	"github.com/tunplan/tunplan/testinfra/lab"
)

// healthExample is examples/two-region with an HTTP check on its service: every second, fall 2,
// rise 2, timeout 500 ms.
var healthExample = filepath.Join("..", "..", "examples", "health-check", "tunplan.hcl")

// The director's watcher checks each realserver through the tunnel and holds one whose nginx is
// stopped at weight 0 within fall × interval + timeout; a client's request loop fails only inside
// that window; diff calls the held weight no drift and shows it apart, while a weight changed by
// hand is drift; once nginx is back the weight returns within rise × interval.
func TestHealthChecksHoldAFailingRealserver(t *testing.T) {
	reset(t)
	mustTunplan(t, healthExample, 0, "apply", "--auto-approve")
	ipvs := sh(t, "director", "ipvsadm -Sn")
	for _, line := range []string{
		fmt.Sprintf("-A -f %d -s rr", protocol.ProbeMarkBase),
		fmt.Sprintf("-a -f %d -r %s:80 -i -w 1", protocol.ProbeMarkBase, rip2),
		fmt.Sprintf("-a -f %d -r %s:80 -i -w 1", protocol.ProbeMarkBase+1, rip1),
	} {
		if !strings.Contains(ipvs, line) {
			t.Errorf("the director's IPVS table lacks %q:\n%s", line, ipvs)
		}
	}
	stopWatcherAfter(t)
	waitHealthy(t)

	// Ten requests a second from the client, for the whole test.
	requests := startLoop(t, "http://"+vip+"/", 90*time.Second)
	time.Sleep(2 * time.Second)

	stopping := time.Now()
	sh(t, "rs2", "/usr/sbin/nginx -e /var/log/nginx/error.log -c "+nginxConf("rs2")+" -s stop")
	held := waitWeight(t, web, rip2, "0", 10*time.Second)
	detect := held.Sub(stopping)
	t.Logf("rs2's nginx stopped: weight 0 after %v (bound: fall 2 × interval 1s + timeout 500ms = 2.5s)", detect.Round(10*time.Millisecond))
	if detect > 2500*time.Millisecond+time.Second { // a second for the lab's emulated CPU and the polling
		t.Errorf("rs2 held after %v, want within fall × interval + timeout", detect)
	}
	time.Sleep(2 * time.Second) // requests after the window: none may fail

	out := mustTunplan(t, healthExample, 0, "diff")
	if !strings.Contains(out, "held back by health checks or drains (runtime state, not drift):") || !strings.Contains(out, "tcp/"+vip+":80 -> "+rip2+":80  at weight 0 (plan weight 1), failing since ") {
		t.Errorf("diff with rs2 held:\n%s", out)
	}
	sh(t, "director", "ipvsadm -e -t "+vip+":80 -r "+rip1+":80 -i -w 5")
	if out := mustTunplan(t, healthExample, 2, "diff"); !strings.Contains(out, "~ ipvs tcp/"+vip+":80 -> "+rip1+":80") || strings.Contains(out, rip2+":80  weight") {
		t.Errorf("diff of rs1's weight changed by hand (rs2 held):\n%s", out)
	}
	mustTunplan(t, healthExample, 0, "apply", "--auto-approve")
	if w := weight(t, rip2); w != "0" {
		t.Errorf("apply gave rs2 weight %s back while the watcher holds it", w)
	}

	restartNginx(t, "rs2", nginxConf("rs2"))
	starting := time.Now() // nginx listens again
	back := waitWeight(t, web, rip2, "1", 10*time.Second)
	t.Logf("rs2's nginx started: weight back after %v (bound: rise 2 × interval 1s = 2s)", back.Sub(starting).Round(10*time.Millisecond))
	if back.Sub(starting) > 2*time.Second+time.Second {
		t.Errorf("rs2 back after %v, want within rise × interval", back.Sub(starting))
	}
	time.Sleep(2 * time.Second)

	// A watcher that is killed is drift once its report is stale, and apply starts it again.
	sh(t, "director", "pkill -f '^"+protocol.HelperPath+" watch$'")
	time.Sleep(4500 * time.Millisecond) // three intervals of 1 s, and a second
	if out := mustTunplan(t, healthExample, 2, "diff"); !strings.Contains(out, "~ watcher tunplan-watch") || !strings.Contains(out, "stale (last report ") {
		t.Errorf("diff with the watcher killed:\n%s", out)
	}
	mustTunplan(t, healthExample, 0, "apply", "--auto-approve")
	waitHealthy(t)
	mustTunplan(t, healthExample, 0, "diff")

	// Failures only between nginx's stop and the hold (and half a second more, for requests under
	// way), none before, none after: not while rs2 was held, nor once it was back.
	results := requests()
	var before, window, after []string
	for _, r := range results {
		switch {
		case r.Result == "ok":
		case r.At.Before(stopping):
			before = append(before, r.Result)
		case r.At.Before(held.Add(500 * time.Millisecond)):
			window = append(window, r.Result)
		default:
			after = append(after, r.Result)
		}
	}
	span := results[len(results)-1].At.Sub(results[0].At)
	rate := float64(len(results)) / span.Seconds()
	t.Logf("client: %d requests in %v (%.1f/s); %d failed inside the window of %v, %d before it, %d after it", len(results), span.Round(time.Second), rate, len(window), detect.Round(10*time.Millisecond), len(before), len(after))
	if len(before) != 0 || len(after) != 0 || rate < 5 {
		t.Errorf("failed requests outside the window: before %q, after %q; rate %.1f/s", before, after, rate)
	}
}

// web is the director's VIP service as ipvsadm -Sn writes it.
const web = "-t " + vip + ":80"

// weight is rip's weight in the director's VIP service.
func weight(t *testing.T, rip string) string { t.Helper(); return weightIn(t, web, rip) }

// weightIn is rip's weight in the director's service svc, as ipvsadm -Sn writes it ("-u VIP:port").
func weightIn(t *testing.T, svc, rip string) string {
	t.Helper()
	port := svc[strings.LastIndex(svc, ":"):]
	line := regexp.MustCompile(`-a ` + regexp.QuoteMeta(svc) + ` -r (\S+)` + regexp.QuoteMeta(port) + ` -i -w (\d+)`)
	for _, m := range line.FindAllStringSubmatch(sh(t, "director", "ipvsadm -Sn"), -1) {
		if m[1] == rip {
			return m[2]
		}
	}
	return ""
}

// waitWeight polls rip's weight in service svc every 50 ms until it is w, and returns when it saw it.
func waitWeight(t *testing.T, svc, rip, w string, limit time.Duration) time.Time {
	t.Helper()
	var at time.Time
	waitUntil(t, limit, "weight "+w+" for "+rip+" in "+svc, func() bool { at = time.Now(); return weightIn(t, svc, rip) == w }) // the tests run in the lab's VM: one clock with the hosts
	return at
}

func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(limit); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("no %s after %v", what, limit)
}

// waitHealthy waits for the director's watcher to report both realservers healthy.
// stopWatcherAfter stops the director's watcher when the test ends, and shows its log if the test
// failed. The lab runs no systemd: the helper started the watcher as a process of its own.
func stopWatcherAfter(t *testing.T) {
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := lab.Sh("director", "cat "+protocol.WatchLog+" "+protocol.HealthFile)
			t.Logf("the watcher said:\n%s", log)
		}
		lab.Sh("director", "pkill -f '^"+protocol.HelperPath+" watch$'")
	})
}

func waitHealthy(t *testing.T) {
	t.Helper()
	waitUntil(t, 10*time.Second, "the watcher reports both realservers healthy", func() bool {
		out, _ := lab.Sh("director", "cat "+protocol.HealthFile)
		return strings.Count(out, `"healthy":true`) == 2
	})
}

// GUE and GRE services are checked through their own tunnels: with only the watcher sending (no
// client), the router sees each check leave the director as the service's traffic does (GUE: UDP
// to port 6080; GRE: IP protocol 47), carrying the director's address to the service's VIP, to
// each realserver; rs1's nginx stopped, the GUE service holds rs1 at weight 0.
func TestHealthChecksGoThroughGUE(t *testing.T) {
	reset(t)
	check := "  health_check {\n    interval = \"1s\"\n    timeout = \"500ms\"\n    fall = 2\n  }\n"
	gue, gre := "  tunnel    = \"gue\"\n", "  tunnel    = \"gre\"\n"
	plan := planVariant(t, planVariant(t, tunnelsExample, gue, gue+check), gre, gre+check)
	mustTunplan(t, plan, 0, "apply", "--auto-approve")
	stopWatcherAfter(t)
	packets := captureTunnelled(t, func() { time.Sleep(3 * time.Second) }) // three rounds of checks
	for kind, vip := range map[string]string{"gue": vipGUE, "gre": vipGRE} {
		checked := map[string]int{}
		for _, e := range packets {
			if e.innerD != netip.AddrPortFrom(netip.MustParseAddr(vip), 80) {
				continue
			}
			if e.kind != kind || (kind == "gue" && e.dport != guePort) || e.src.String() != director || e.innerSrc.Addr().String() != director {
				t.Errorf("a check of the %s service went otherwise: %s", kind, e)
				continue
			}
			checked[e.dst.String()]++
		}
		if checked[rip1] == 0 || checked[rip2] == 0 {
			t.Errorf("the router saw %s checks to %v, want both realservers (%d tunnelled packets)", kind, checked, len(packets))
		}
		t.Logf("%s checks seen by the router: %v", kind, checked)
	}

	restartNginx(t, "rs1", "")
	defer restartNginx(t, "rs1", nginxConf("rs1"))
	waitUntil(t, 10*time.Second, "rs1 held in the GUE service", func() bool {
		return strings.Contains(sh(t, "director", "ipvsadm -Sn"), "-a -t "+vipGUE+":80 -r "+rip1+":80 -i -w 0 --tun-type gue --tun-port 6080")
	})
}
