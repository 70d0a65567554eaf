package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tunplan/tunplan/modules/protocol"
	"github.com/tunplan/tunplan/testinfra/lab"
)

// After a reboot only what the host runs at boot brings its state back: systemd-modules-load,
// systemd-sysctl and the restore unit tunplan installed, with no SSH and no tunplan command.
func TestBootRestoresAfterReboot(t *testing.T) {
	reset(t)
	out := mustTunplan(t, example, 0, "apply", "--auto-approve")
	// The lab's hosts run no systemd: apply says the unit is there but nothing will run it.
	if !strings.Contains(out, "warning: systemd is not running on this host") {
		t.Errorf("apply does not warn that systemd is missing:\n%s", out)
	}
	planned := kernelState(t)
	boot := func(t *testing.T, hosts ...string) {
		t.Helper()
		for _, h := range hosts {
			log, err := lab.Boot(h)
			if err != nil {
				t.Fatalf("boot %s: %v\n%s", h, err, log)
			}
			if !strings.Contains(log, "tunplan-helper restore: generation 1 (apply of run") {
				t.Errorf("boot %s: restore said:\n%s", h, log)
			}
		}
	}
	cases := []struct {
		name    string
		modules bool // every host at once, ipip and IPVS unloaded
		hosts   []string
	}{
		{"one realserver and the director", false, []string{"rs1", "director"}},
		{"every host, modules unloaded", true, []string{"director", "rs1", "rs2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := lab.Reboot(c.modules, c.hosts...); err != nil {
				t.Fatal(err)
			}
			mustTunplan(t, example, 2, "diff") // the kernel forgot
			boot(t, c.hosts...)
			if got := kernelState(t); !equalStates(got, planned) {
				t.Errorf("after boot:\n%v\nwant the planned state:\n%v", got, planned)
			}
			assertTunnelTraffic(t)
			mustTunplan(t, example, 0, "diff")
		})
	}
	// A missing restore unit is drift, and apply puts it back.
	sh(t, "rs2", "rm "+protocol.RestoreUnit)
	if out := mustTunplan(t, example, 2, "diff"); !strings.Contains(out, "+ file "+protocol.RestoreUnit) {
		t.Errorf("diff of a missing unit:\n%s", out)
	}
	mustTunplan(t, example, 0, "apply", "--auto-approve")
	mustTunplan(t, example, 0, "diff")
}

var conns = regexp.MustCompile(`(?m)^TCP\s+\S+\s+(\d+)`)

// serviceConns is the director's connection counter of the VIP's service: a service deleted and
// added again starts from zero.
func serviceConns(t *testing.T) int {
	t.Helper()
	m := conns.FindStringSubmatch(sh(t, "director", "ipvsadm -Ln --stats -t "+vip+":80"))
	if m == nil {
		t.Fatal("no service for the VIP")
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// Taking over a setup made by hand with the manual's scripts: apply adopts the matching objects in
// place, while the client keeps sending requests, and rollback --to 0 gives the hand-made state back.
func TestApplyAdoptsAHandMadeSetup(t *testing.T) {
	reset(t)
	runBaselineScripts(t)
	handMade := kernelState(t)
	if _, err := lab.Probe(4); err != nil { // a few connections, so the counter shows a service kept
		t.Fatal(err)
	}
	sh(t, "director", "sleep 2.5") // ipvsadm folds its counters every 2 s
	connsBefore := serviceConns(t)
	var wg sync.WaitGroup
	var loop string
	wg.Add(1)
	go func() {
		defer wg.Done()
		// At most 600 requests (about two minutes), until the test says stop.
		loop, _ = lab.Sh("client", `rm -f /tmp/stop; ok=0; failed=0
			for i in $(seq 600); do [ -e /tmp/stop ] && break
			if curl -s --max-time 2 -o /dev/null http://`+vip+`/; then ok=$((ok+1)); else failed=$((failed+1)); fi; done
			echo "ok=$ok failed=$failed"`)
	}()
	out := mustTunplan(t, example, 0, "apply", "--auto-approve")
	sh(t, "client", "sleep 1; touch /tmp/stop")
	wg.Wait()
	var ok, failed int
	if _, err := fmt.Sscanf(strings.TrimSpace(loop), "ok=%d failed=%d", &ok, &failed); err != nil || failed != 0 || ok < 3 {
		t.Errorf("requests during the apply: %q", loop)
	}
	if strings.Contains(out, "\n  - ipvs") || strings.Contains(out, "\n  - tunnel") {
		t.Errorf("apply removed hand-made objects:\n%s", out)
	}
	sh(t, "director", "sleep 2.5")
	if n := serviceConns(t); n < connsBefore+ok {
		t.Errorf("the service's connection count went from %d to %d after %d requests: it was made anew", connsBefore, n, ok)
	}
	mustTunplan(t, example, 0, "diff")
	mustTunplan(t, example, 0, "rollback", "--to", "0")
	if got := kernelState(t); !equalStates(got, handMade) {
		t.Errorf("rollback --to 0:\n%v\nwant the hand-made state:\n%v", got, handMade)
	}
}

// destroy removes what tunplan owns, directors first, and leaves foreign objects alone.
func TestDestroyLeavesForeignObjects(t *testing.T) {
	reset(t)
	mustTunplan(t, example, 0, "apply", "--auto-approve")
	sh(t, "director", "ipvsadm -A -u 198.18.48.50:53 -s wlc")
	sh(t, "rs1", "ip addr add 198.18.48.77/32 dev tunl0")
	out := mustTunplan(t, example, 0, "destroy", "--auto-approve")
	if !strings.Contains(out, "Destroy complete! 3 hosts cleaned") {
		t.Errorf("destroy output:\n%s", out)
	}
	if got := sh(t, "director", "ipvsadm -Sn"); strings.TrimSpace(got) != "-A -u 198.18.48.50:53 -s wlc" {
		t.Errorf("director's IPVS table after destroy:\n%s", got)
	}
	if got := sh(t, "rs1", "ip -4 -o addr show dev tunl0 | awk '{print $4}'"); strings.TrimSpace(got) != "198.18.48.77/32" {
		t.Errorf("rs1's tunl0 after destroy: %q", got)
	}
	for _, h := range []string{"director", "rs1", "rs2"} {
		left := sh(t, h, "ls -d /var/lib/tunplan /etc/sysctl.d/99-tunplan.conf "+protocol.RestoreUnit+" "+protocol.RestoreLink+" "+protocol.ModulesLoad+" 2>/dev/null || true")
		if strings.TrimSpace(left) != "" {
			t.Errorf("%s keeps %s", h, left)
		}
	}
	if got := sh(t, "rs2", "cat /proc/sys/net/ipv4/conf/all/rp_filter /proc/sys/net/ipv4/conf/all/arp_ignore"); got != "1\n0\n" {
		t.Errorf("rs2's sysctls after destroy: %q, want the lab's stock 1 and 0", got)
	}
	mustTunplan(t, example, 2, "diff")
}

// An upgrade keeps the boot restore: an older build of tunplan applies, a newer one only runs diff
// (which installs its helper on every host), then every host reboots. The units name the stable
// helper path, which the newer build's install switched to its helper, so the boot restores all.
// rs1's units are first made as a build from before the stable path wrote them, naming the older
// helper itself: that helper stays while a unit names it, and diff reports the unit as stale.
func TestUpgradeKeepsTheBootRestore(t *testing.T) {
	reset(t)
	older, newer := os.Getenv("TUNPLAN_OLDER_BIN"), os.Getenv("TUNPLAN_BIN")
	olderSum, newerSum := helperSum(t, older), helperSum(t, newer)
	if olderSum == newerSum {
		t.Fatalf("the older and newer builds embed the same helper (sha256 %s)", olderSum)
	}
	mustTunplanBin(t, older, example, 0, "apply", "--auto-approve")
	planned := kernelState(t)
	hosts := []string{"director", "rs1", "rs2"}
	for _, h := range hosts {
		if unit := sh(t, h, "cat "+protocol.RestoreUnit); !strings.Contains(unit, "\nExecStart="+protocol.HelperPath+" restore\n") {
			t.Fatalf("%s's restore unit does not run %s:\n%s", h, protocol.HelperPath, unit)
		}
	}
	oldHelper := protocol.HelperDir + "/tunplan-helper-" + olderSum[:16]
	sh(t, "rs1", "sed -i 's|"+protocol.HelperPath+"|"+oldHelper+"|' "+protocol.RestoreUnit)

	out := mustTunplan(t, example, 2, "diff")
	if !strings.Contains(out, "~ file "+protocol.RestoreUnit) || strings.Count(out, "\n  ") != 1 {
		t.Errorf("diff after the upgrade, want only rs1's restore unit stale:\n%s", out)
	}
	for _, h := range hosts {
		if got := strings.Fields(sh(t, h, "sha256sum "+protocol.HelperPath)); len(got) == 0 || got[0] != newerSum {
			t.Errorf("%s: %s is %v, want the newer helper %s", h, protocol.HelperPath, got, newerSum)
		}
		_, err := lab.Sh(h, "test -x "+oldHelper)
		if kept := err == nil; kept != (h == "rs1") {
			t.Errorf("%s: older helper kept %v, want it kept only where a unit names it (rs1)", h, kept)
		}
	}

	if err := lab.Reboot(true, hosts...); err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		log, err := lab.Boot(h)
		if err != nil || !strings.Contains(log, "tunplan-helper restore: generation 1 (apply of run") {
			t.Errorf("boot %s: %v\n%s", h, err, log)
		}
	}
	if got := kernelState(t); !equalStates(got, planned) {
		t.Errorf("after the reboot:\n%v\nwant the planned state:\n%v", got, planned)
	}
	assertTunnelTraffic(t)
	mustTunplan(t, example, 0, "apply", "--auto-approve")
	mustTunplan(t, example, 0, "diff")
}

// helperSum is the SHA-256 of the linux/amd64 helper that the tunplan build bin embeds.
func helperSum(t *testing.T, bin string) string {
	t.Helper()
	out, _ := runBin(t, bin, "version")
	for _, l := range strings.Split(out, "\n") {
		if s, ok := strings.CutPrefix(l, "helper linux/amd64 sha256:"); ok {
			return strings.TrimSpace(s)
		}
	}
	t.Fatalf("%s version names no linux/amd64 helper:\n%s", bin, out)
	return ""
}

// destroy never takes the host's own device down: with vip_device = "eth0" set after the first
// apply (so generation 0 never read eth0), destroy removes the VIP from eth0 and leaves eth0 up, and
// the director serves through it again once the example is applied anew.
func TestDestroyLeavesTheHostsOwnDeviceUp(t *testing.T) {
	reset(t)
	mustTunplan(t, example, 0, "apply", "--auto-approve")
	ssh := `  ssh { host = "198.19.0.11" }` + "\n"
	onEth0 := planVariant(t, example, ssh, ssh+`  vip_device = "eth0"`+"\n")
	mustTunplan(t, onEth0, 0, "apply", "--auto-approve")
	if got := sh(t, "director", "ip -4 -o addr show dev eth0"); !strings.Contains(got, " "+vip+"/32 ") {
		t.Fatalf("the VIP is not on the director's eth0:\n%s", got)
	}
	mustTunplan(t, onEth0, 0, "destroy", "--auto-approve")
	if got := sh(t, "director", "ip -o link show dev eth0"); !regexp.MustCompile(`[<,]UP[,>]`).MatchString(got) {
		t.Errorf("destroy took the director's eth0 down:\n%s", got)
	}
	if got := sh(t, "director", "ip -4 -o addr show dev eth0"); strings.Contains(got, " "+vip+"/32 ") {
		t.Errorf("the VIP is still on the director's eth0:\n%s", got)
	}
	// The director serves on its LAN again once the example is applied anew: eth0 still carries it.
	mustTunplan(t, example, 0, "apply", "--auto-approve")
	assertTunnelTraffic(t)
}

// planVariant is plan with old (which it must hold once) replaced by new, in a temporary file.
func planVariant(t *testing.T, plan, old, new string) string {
	t.Helper()
	src, err := os.ReadFile(plan)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(src), old) != 1 {
		t.Fatalf("%s does not hold %q once", plan, old)
	}
	p := filepath.Join(t.TempDir(), "variant.hcl")
	if err := os.WriteFile(p, []byte(strings.Replace(string(src), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
