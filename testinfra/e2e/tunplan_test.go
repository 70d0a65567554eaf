package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tunplan/tunplan/testinfra/lab"
)

const (
	vip      = lab.VIP
	director = lab.DirectorIP
	rip1     = lab.RS1IP
	rip2     = lab.RS2IP
)

// example is the documented two-region plan, the one this suite applies.
var example = filepath.Join("..", "..", "examples", "two-region", "tunplan.hcl")

// tunplan runs the tunplan binary in the control namespace against plan and returns its output and
// exit code.
func tunplan(t *testing.T, plan string, args ...string) (string, int) {
	t.Helper()
	return tunplanBin(t, os.Getenv("TUNPLAN_BIN"), plan, args...)
}

// tunplanBin is tunplan with another build of tunplan, bin.
func tunplanBin(t *testing.T, bin, plan string, args ...string) (string, int) {
	t.Helper()
	abs, err := filepath.Abs(plan)
	if err != nil {
		t.Fatal(err)
	}
	return runBin(t, bin, append([]string{args[0], "-f", abs, "--var", "ssh_key=" + lab.SSHKey(), "--var", "known_hosts=" + lab.KnownHosts()}, args[1:]...)...)
}

// runTunplan runs the tunplan binary in the control namespace with exactly args.
func runTunplan(t *testing.T, args ...string) (string, int) {
	t.Helper()
	return runBin(t, os.Getenv("TUNPLAN_BIN"), args...)
}

func runBin(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("%s %v: %v", bin, args, err)
	return "", -1
}

// mustTunplan runs tunplan and fails the test unless it exits with want.
func mustTunplan(t *testing.T, plan string, want int, args ...string) string {
	t.Helper()
	return mustTunplanBin(t, os.Getenv("TUNPLAN_BIN"), plan, want, args...)
}

func mustTunplanBin(t *testing.T, bin, plan string, want int, args ...string) string {
	t.Helper()
	out, code := tunplanBin(t, bin, plan, args...)
	if code != want {
		t.Fatalf("%s %s: exit %d, want %d\n%s", filepath.Base(bin), strings.Join(args, " "), code, want, out)
	}
	return out
}

func sh(t *testing.T, host, script string) string {
	t.Helper()
	out, err := lab.Sh(host, script)
	if err != nil {
		t.Fatalf("%s: %s: %v\n%s", host, script, err, out)
	}
	return out
}

func reset(t *testing.T) {
	t.Helper()
	if err := lab.Reset(); err != nil {
		t.Fatalf("lab reset: %v", err)
	}
}

// kernelState is what the issue compares: IPVS table, tunl0 addresses and the LVS sysctls, per host.
func kernelState(t *testing.T) map[string]string {
	t.Helper()
	return map[string]string{
		"director": sh(t, "director", "ipvsadm -Sn | sort; ip -4 -o addr show dev tunl0 | awk '{print $4}'; "+
			"cat /proc/sys/net/ipv4/ip_forward"),
		"rs1": sh(t, "rs1", rsState),
		"rs2": sh(t, "rs2", rsState),
	}
}

const rsState = "ip -4 -o addr show dev tunl0 | awk '{print $4}'; ip -o link show tunl0 | grep -o 'state [A-Z]*'; " +
	"for k in all/rp_filter tunl0/rp_filter; do echo $k=$(cat /proc/sys/net/ipv4/conf/$k); done"

func TestApplyTwoRegionServesTrafficThroughTunnel(t *testing.T) {
	reset(t)
	out := mustTunplan(t, example, 0, "apply", "--auto-approve")
	for _, want := range []string{"+ ipvs tcp/" + vip + ":80", "Apply complete! 3 hosts changed."} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %q:\n%s", want, out)
		}
	}
	assertTunnelTraffic(t)
}

// assertTunnelTraffic is the lab baseline's three checks: both realservers answer in turn, the
// router sees IPIP from the director to each realserver carrying the VIP, and the director sends
// nothing back (direct return).
func assertTunnelTraffic(t *testing.T) {
	t.Helper()
	traffic, err := lab.Probe(6)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + traffic.Summary())
	for _, p := range traffic.Problems(director, rip1, rip2) {
		t.Error(p)
	}
}

func TestApplyMatchesHandWrittenBaseline(t *testing.T) {
	reset(t)
	runBaselineScripts(t)
	want := kernelState(t)
	reset(t)
	mustTunplan(t, example, 0, "apply", "--auto-approve")
	got := kernelState(t)
	for h := range want {
		if got[h] != want[h] {
			t.Errorf("%s: tunplan's kernel state differs from the baseline scripts'\n--- baseline\n%s\n--- tunplan\n%s", h, want[h], got[h])
		}
	}
}

func runBaselineScripts(t *testing.T) {
	t.Helper()
	scripts, err := filepath.Abs(filepath.Join("..", "scripts"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := lab.Baseline(scripts); err != nil {
		t.Fatalf("baseline scripts: %v\n%s", err, out)
	}
}

func TestSecondApplyChangesNothing(t *testing.T) {
	reset(t)
	mustTunplan(t, example, 0, "apply", "--auto-approve")
	before := kernelState(t)
	gens := sh(t, "director", "ls /var/lib/tunplan/generations")
	out := mustTunplan(t, example, 0, "apply", "--auto-approve")
	if !strings.Contains(out, "No changes. 3 hosts match the plan.") {
		t.Errorf("second apply output:\n%s", out)
	}
	if after := kernelState(t); !equalStates(before, after) {
		t.Errorf("second apply changed the kernel:\nbefore %v\nafter %v", before, after)
	}
	if g := sh(t, "director", "ls /var/lib/tunplan/generations"); g != gens {
		t.Errorf("second apply recorded a generation: before %q after %q", gens, g)
	}
	mustTunplan(t, example, 0, "diff")
}

func equalStates(a, b map[string]string) bool {
	for k := range a {
		if a[k] != b[k] {
			return false
		}
	}
	return len(a) == len(b)
}

func TestDriftIsReportedAndFixed(t *testing.T) {
	reset(t)
	mustTunplan(t, example, 0, "apply", "--auto-approve")
	want := kernelState(t)
	cases := []struct {
		name, host, inject string
		report             []string // lines diff must print
	}{
		{"destination deleted", "director", "ipvsadm -d -t " + vip + ":80 -r " + rip1 + ":80",
			[]string{"+ ipvs tcp/" + vip + ":80 -> " + rip1 + ":80"}},
		{"weight changed", "director", "ipvsadm -e -t " + vip + ":80 -r " + rip2 + ":80 -i -w 7",
			[]string{"~ ipvs tcp/" + vip + ":80 -> " + rip2 + ":80", "weight=7 fwd=tunnel => weight=1 fwd=tunnel"}},
		{"rp_filter back to 1", "rs1", "echo 1 > /proc/sys/net/ipv4/conf/all/rp_filter",
			[]string{"~ sysctl net.ipv4.conf.all.rp_filter", "1 => 0"}},
		{"VIP removed from tunl0", "rs2", "ip addr del " + vip + "/32 dev tunl0",
			[]string{"+ tunnel tunl0 " + vip + "/32"}},
		{"extra destination", "director", "ipvsadm -a -t " + vip + ":80 -r 198.18.10.99:80 -i -w 1",
			[]string{"- ipvs tcp/" + vip + ":80 -> 198.18.10.99:80"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sh(t, c.host, c.inject)
			out := mustTunplan(t, example, 2, "diff")
			for _, line := range c.report {
				if !strings.Contains(out, line) {
					t.Errorf("diff does not say %q:\n%s", line, out)
				}
			}
			if n := strings.Count(out, "\n  "); n != 1 {
				t.Errorf("diff reports %d changes, want exactly 1:\n%s", n, out)
			}
			mustTunplan(t, example, 0, "apply", "--auto-approve")
			mustTunplan(t, example, 0, "diff")
			if got := kernelState(t); !equalStates(got, want) {
				t.Errorf("apply did not restore the planned state:\nwant %v\ngot  %v", want, got)
			}
		})
	}
}

func TestRollbackRestoresStateBeforeApply(t *testing.T) {
	reset(t)
	mustTunplan(t, example, 0, "apply", "--auto-approve")
	before := kernelState(t)
	changed := changedPlan(t)
	mustTunplan(t, changed, 0, "apply", "--auto-approve")
	if after := kernelState(t); equalStates(after, before) {
		t.Fatalf("the changed plan changed nothing: %v", after)
	}
	out := mustTunplan(t, changed, 0, "rollback")
	if !strings.Contains(out, "Rollback complete!") {
		t.Errorf("rollback output:\n%s", out)
	}
	if got := kernelState(t); !equalStates(got, before) {
		t.Errorf("rollback did not restore the state before the apply:\nwant %v\ngot  %v", before, got)
	}
	mustTunplan(t, example, 0, "diff")
}

// changedPlan writes a variant of the example: wrr instead of rr, a weight changed, a second VIP.
func changedPlan(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	for old, new := range map[string]string{`"rr"`: `"wrr"`, "weight = 1": "weight = 3"} {
		if !strings.Contains(s, old) {
			t.Fatalf("example has no %s to change", old)
		}
		s = strings.Replace(s, old, new, 1)
	}
	p := filepath.Join(t.TempDir(), "changed.hcl")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
