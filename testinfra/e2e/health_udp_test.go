package e2e

import (
	"strings"
	"testing"
	"time"
)

// A UDP service is checked through its own tunnel with its probe block: with the echo responder
// stopped on beijing, the watcher holds beijing at weight 0 in the UDP service (its ICMP port
// unreachable is "connection refused"), and gives it back once the responder answers again; a
// responder bound to 0.0.0.0 answers from the RIP, which a client cannot use, and is held too.
func TestHealthChecksUDP(t *testing.T) {
	reset(t)
	bin := udpEchoBin(t)
	echo := "-u " + vip + ":" + udpPort
	plan := planVariant(t, udpPlan(t, "tunplan-udp-probe: are you there?", "tunplan-udp-probe"), "  probe {",
		"  health_check {\n    interval = \"1s\"\n    timeout = \"500ms\"\n    fall = 2\n  }\n  probe {")
	mustTunplan(t, plan, 0, "apply", "--auto-approve")
	for _, h := range []string{"rs1", "rs2"} {
		startEcho(t, bin, h, vip+":"+udpPort)
		t.Cleanup(func() { stopEcho(t, h) })
	}
	stopWatcherAfter(t)
	waitHealthy(t)

	stopping := time.Now()
	stopEcho(t, "rs2")
	held := waitWeight(t, echo, rip2, "0", 10*time.Second)
	t.Logf("beijing's responder stopped: weight 0 after %v (bound: fall 2 × interval 1s + timeout 500ms = 2.5s)", held.Sub(stopping).Round(10*time.Millisecond))
	if held.Sub(stopping) > 3500*time.Millisecond {
		t.Errorf("beijing held after %v", held.Sub(stopping))
	}
	if out := mustTunplan(t, plan, 0, "diff"); !strings.Contains(out, "udp/"+vip+":"+udpPort+" -> "+rip2+":"+udpPort+"  at weight 0 (plan weight 1), failing since ") || !strings.Contains(out, "connection refused") {
		t.Errorf("diff with beijing held:\n%s", out)
	}
	if w := weightIn(t, echo, rip1); w != "1" {
		t.Errorf("shanghai's weight %s, want 1", w)
	}

	startEcho(t, bin, "rs2", vip+":"+udpPort)
	waitWeight(t, echo, rip2, "1", 10*time.Second)

	// Bound to 0.0.0.0, beijing answers from its RIP: no client (nor the check's connected socket)
	// takes that reply.
	stopEcho(t, "rs2")
	startEcho(t, bin, "rs2", "0.0.0.0:"+udpPort)
	waitWeight(t, echo, rip2, "0", 10*time.Second)
	if out := mustTunplan(t, plan, 0, "diff"); !strings.Contains(out, "no reply within 500ms") {
		t.Errorf("diff with beijing answering from its RIP:\n%s", out)
	}
}
