package e2e

import (
	"strings"
	"testing"
	"time"
)

// With on_failure = "remove", beijing's nginx stopped takes it out of the service (as keepalived
// does) instead of weight 0; diff exits 0 and says so, status shows it removed, and it comes back
// with its plan weight and the tunnel forward method once nginx runs again. With both nginx
// stopped, the service fails open: both keep their plan weight, and status says why.
func TestHealthChecksRemove(t *testing.T) {
	reset(t)
	plan := planVariant(t, healthExample, "    rise     = 2", "    rise     = 2\n    on_failure = \"remove\"")
	mustTunplan(t, plan, 0, "apply", "--auto-approve")
	stopWatcherAfter(t)
	waitHealthy(t)

	stopping := time.Now()
	restartNginx(t, "rs2", "")
	out := waitWeight(t, web, rip2, "", 10*time.Second) // not in the service
	t.Logf("beijing's nginx stopped: removed after %v", out.Sub(stopping).Round(10*time.Millisecond))
	if d := mustTunplan(t, plan, 0, "diff"); !strings.Contains(d, "tcp/"+vip+":80 -> "+rip2+":80  removed from the service (plan weight 1), failing since ") {
		t.Errorf("diff with beijing removed:\n%s", d)
	}
	if s := mustTunplan(t, plan, 0, "status"); !strings.Contains(s, "removed since ") {
		t.Errorf("status with beijing removed:\n%s", s)
	}
	restartNginx(t, "rs2", nginxConf("rs2"))
	waitWeight(t, web, rip2, "1", 10*time.Second) // back, -i -w 1
	mustTunplan(t, plan, 0, "diff")

	restartNginx(t, "rs1", "")
	restartNginx(t, "rs2", "")
	defer restartNginx(t, "rs2", nginxConf("rs2"))
	defer restartNginx(t, "rs1", nginxConf("rs1"))
	waitUntil(t, 10*time.Second, "status says the service fails open", func() bool {
		out, _ := tunplan(t, plan, "status")
		return strings.Count(out, "failing, fail open (every destination fails) since ") == 2
	})
	if w1, w2 := weight(t, rip1), weight(t, rip2); w1 != "1" || w2 != "1" {
		t.Errorf("with every destination failing, weights %s and %s, want both kept at 1", w1, w2)
	}
}
