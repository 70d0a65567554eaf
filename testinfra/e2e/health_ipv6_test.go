package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tunplan/tunplan/testinfra/lab"
)

// An IPv6 service is checked through its own IPv6-in-IPv6 tunnel, from the director's IPv6 address:
// the router sees the checks leave in IPv6 (next header 41) to each realserver; beijing's nginx
// stopped is held at weight 0 in the IPv6 service, and comes back once nginx is started again.
func TestHealthChecksIPv6(t *testing.T) {
	reset(t)
	plan := planVariant(t, ipv6Example, "  vip       = \""+lab.VIP6+"\"\n", "  vip       = \""+lab.VIP6+"\"\n  health_check {\n    type     = \"http\"\n    interval = \"1s\"\n    timeout  = \"500ms\"\n    fall     = 2\n  }\n")
	mustTunplan(t, plan, 0, "apply", "--auto-approve")
	stopWatcherAfter(t)
	waitHealthy(t)

	// With no client, what the router sees in IPv6-in-IPv6 is the checks: from the director's IPv6
	// address to each realserver, the VIP's port 80 inside.
	seen := sh(t, "router", "timeout 3 tcpdump -i lan0 -nn -l 'ip6 and ip6[6] == 41' 2>/dev/null; true")
	for _, rip := range []string{lab.RS1IP6, lab.RS2IP6} {
		if !regexp.MustCompile(`IP6 \S+ > ` + regexp.QuoteMeta(rip) + `: IP6 \S+ > ` + regexp.QuoteMeta(lab.VIP6) + `\.80: `).MatchString(seen) {
			t.Errorf("the router saw no check tunnelled to %s:\n%s", rip, seen)
		}
	}

	web6 := "-t [" + lab.VIP6 + "]:80"
	stopping := time.Now()
	sh(t, "rs2", "/usr/sbin/nginx -e /var/log/nginx/error.log -c "+nginxConf("rs2")+" -s stop")
	held := waitWeight(t, web6, "["+lab.RS2IP6+"]", "0", 10*time.Second)
	t.Logf("beijing's nginx stopped: weight 0 in the IPv6 service after %v (bound: fall 2 × interval 1s + timeout 500ms = 2.5s)", held.Sub(stopping).Round(10*time.Millisecond))
	if out := mustTunplan(t, plan, 0, "diff"); !strings.Contains(out, "tcp/["+lab.VIP6+"]:80 -> ["+lab.RS2IP6+"]:80  at weight 0 (plan weight 1), failing since ") {
		t.Errorf("diff with beijing held:\n%s", out)
	}
	restartNginx(t, "rs2", nginxConf("rs2"))
	waitWeight(t, web6, "["+lab.RS2IP6+"]", "1", 10*time.Second)
}
