package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tunplan/tunplan/testinfra/lab"
)

// TestTunnelMSS: on the lab's 1500-byte paths the realservers offer MSS 1460, which verify warns
// about, naming tunnel_mss = 1440. The example with tunnel_mss = 1440 on both realservers sets
// `advmss 1440` on their default routes and nothing else about them; verify then reports MSS 1440
// for both and no warning, diff exits 0, and traffic flows. Rolling the run back removes the
// advmss (the route is as before), and traffic still flows. Applied again, an advmss taken off by
// hand is drift that apply, and the boot restore, set again; a plan without tunnel_mss removes it.
func TestTunnelMSS(t *testing.T) {
	reset(t)
	realservers := map[string]string{"rs1": "shanghai (" + rip1 + ")", "rs2": "beijing (" + rip2 + ")"}
	before := map[string]string{}
	for h := range realservers {
		before[h] = strings.TrimSpace(sh(t, h, "ip route show default"))
		if before[h] == "" || strings.Contains(before[h], "advmss") {
			t.Fatalf("%s: the lab's default route is %q", h, before[h])
		}
	}
	// Whatever happens, the lab's routes are given back as they were (lab.Reset leaves routes).
	t.Cleanup(func() {
		for h, r := range before {
			sh(t, h, "ip route change "+r)
		}
	})

	mustTunplan(t, example, 0, "apply", "--auto-approve")
	out := mustTunplan(t, example, 0, "verify")
	t.Logf("verify without tunnel_mss:\n%s", out)
	for _, want := range []string{"set tunnel_mss = 1440 on shanghai", "set tunnel_mss = 1440 on beijing"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify's MTU warning does not say %q", want)
		}
	}

	plan := mssPlan(t)
	out = mustTunplan(t, plan, 2, "diff")
	if n := len(regexp.MustCompile(`(?m)^  ~ route default advmss +0 => 1440$`).FindAllString(out, -1)); n != 2 {
		t.Errorf("diff shows the advmss change %d times, want once per realserver:\n%s", n, out)
	}
	out = mustTunplan(t, plan, 0, "apply", "--auto-approve")
	t.Logf("apply with tunnel_mss:\n%s", out)
	for h := range realservers {
		route := strings.TrimSpace(sh(t, h, "ip route show default"))
		if !strings.Contains(route, " advmss 1440") {
			t.Errorf("%s: default route %q has no advmss 1440", h, route)
		}
		if without := strings.Replace(route, " advmss 1440", "", 1); without != before[h] {
			t.Errorf("%s: the default route changed besides its advmss:\nbefore %q\nafter  %q", h, before[h], route)
		}
	}

	out = mustTunplan(t, plan, 0, "verify")
	t.Logf("verify with tunnel_mss:\n%s", out)
	for _, dest := range realservers {
		if r := row(t, out, dest); !okRow.MatchString(r) || !strings.HasSuffix(r, "  1440") {
			t.Errorf("%s is not ok with MSS 1440: %q", dest, r)
		}
	}
	if strings.Contains(out, "warning") {
		t.Errorf("verify still warns:\n%s", out)
	}
	mustTunplan(t, plan, 0, "diff")
	assertTunnelTraffic(t)

	// Rollback of that run: the advmss goes, the routes are as before, traffic flows.
	out = mustTunplan(t, plan, 0, "rollback")
	t.Logf("rollback:\n%s", out)
	removals := regexp.MustCompile(`(?m)^  - route default advmss +1440$`)
	if n := len(removals.FindAllString(out, -1)); n != 2 {
		t.Errorf("rollback shows the advmss removal %d times, want once per realserver", n)
	}
	sameRoutes := func(when string) {
		t.Helper()
		for h := range realservers {
			if route := strings.TrimSpace(sh(t, h, "ip route show default")); route != before[h] {
				t.Errorf("%s: %s the default route is %q, want %q", h, when, route, before[h])
			}
		}
	}
	sameRoutes("after rollback")
	mustTunplan(t, example, 0, "diff")
	assertTunnelTraffic(t)

	// Drift: the advmss taken off by hand on rs1 is reported alone, and apply sets it again.
	mustTunplan(t, plan, 0, "apply", "--auto-approve")
	sh(t, "rs1", "ip route change "+before["rs1"])
	out = mustTunplan(t, plan, 2, "diff")
	if got := regexp.MustCompile(`(?m)^  [~+-] .*$`).FindAllString(out, -1); len(got) != 1 || !regexp.MustCompile(`^  ~ route default advmss +0 => 1440$`).MatchString(got[0]) {
		t.Errorf("diff after the advmss was removed by hand on rs1: %q\n%s", got, out)
	}
	mustTunplan(t, plan, 0, "apply", "--auto-approve")
	// Boot: what the restore unit runs sets it again on a route that lost it (the route exists).
	sh(t, "rs2", "ip route change "+before["rs2"])
	log, err := lab.Boot("rs2")
	if err != nil || !regexp.MustCompile(`(?m)^  ~ route default advmss +0 => 1440$`).MatchString(log) {
		t.Errorf("boot rs2: %v\n%s", err, log)
	}
	for h := range realservers {
		if route := sh(t, h, "ip route show default"); !strings.Contains(route, " advmss 1440") {
			t.Errorf("%s: default route %q has no advmss 1440", h, route)
		}
	}
	mustTunplan(t, plan, 0, "diff")

	// tunnel_mss leaves the plan: the advmss goes, with the other removals.
	out = mustTunplan(t, example, 0, "apply", "--auto-approve")
	if n := len(removals.FindAllString(out, -1)); n != 2 {
		t.Errorf("the apply without tunnel_mss shows the advmss removal %d times, want once per realserver:\n%s", n, out)
	}
	sameRoutes("without tunnel_mss")
	mustTunplan(t, example, 0, "diff")
}

// mssPlan writes the example with tunnel_mss = 1440 on both realservers.
func mssPlan(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	for _, ssh := range []string{`  ssh { host = "198.19.0.21" }` + "\n", `  ssh { host = "198.19.0.22" }` + "\n"} {
		if strings.Count(s, ssh) != 1 {
			t.Fatalf("the example has no %q", ssh)
		}
		s = strings.Replace(s, ssh, ssh+"  tunnel_mss = 1440\n", 1)
	}
	p := filepath.Join(t.TempDir(), "mss.hcl")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
