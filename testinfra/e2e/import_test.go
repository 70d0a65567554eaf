package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tunplan/tunplan/testinfra/lab"
)

// TestImportDescribesAHandMadeSetup: `tunplan import` reads a set-up made by hand (the write-up's
// scripts, then a UDP service with weights and persistence added with ipvsadm) and writes a plan
// that validates as written and whose apply changes no IPVS service and no VIP: only what every
// plan sets up besides (the realservers' arp sysctls, the boot files) may be new. After that apply
// the hosts match the plan exactly.
func TestImportDescribesAHandMadeSetup(t *testing.T) {
	reset(t)
	runBaselineScripts(t)
	plan := filepath.Join(t.TempDir(), "imported.hcl")

	check := func(t *testing.T, wantInPlan ...string) {
		t.Helper()
		before := kernelState(t)
		out := mustRun(t, 0, "import", "--director", lab.DirectorMgmt, "--realserver", lab.RS1Mgmt+","+lab.RS2Mgmt,
			"--identity-file", lab.SSHKey(), "--known-hosts", lab.KnownHosts(), "-o", plan)
		if !strings.Contains(out, "Wrote "+plan+": 1 director, 2 realservers") || strings.Contains(out, "skipped") {
			t.Errorf("import:\n%s", out)
		}
		src, err := os.ReadFile(plan)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range wantInPlan {
			if !strings.Contains(string(src), want) {
				t.Errorf("the plan lacks %q:\n%s", want, src)
			}
		}
		if out := mustRun(t, 0, "validate", "-f", plan); strings.Contains(out, "Warning") {
			t.Errorf("validate:\n%s", out)
		}
		diff, code := runTunplan(t, "diff", "-f", plan)
		if code != 0 && code != 2 {
			t.Fatalf("diff: exit %d\n%s", code, diff)
		}
		out = mustRun(t, 0, "apply", "--auto-approve", "-f", plan)
		for _, o := range []string{diff, out} {
			if l := serviceChanges.FindAllString(o, -1); len(l) > 0 {
				t.Errorf("the imported plan changes more than the boot files: %q\n%s", l, o)
			}
		}
		if after := kernelState(t); !equalStates(before, after) {
			t.Errorf("applying the imported plan changed the kernel:\nbefore %v\nafter %v", before, after)
		}
		mustRun(t, 0, "diff", "-f", plan)
		if out := mustRun(t, 0, "apply", "--auto-approve", "-f", plan); !strings.Contains(out, "No changes.") {
			t.Errorf("second apply:\n%s", out)
		}
	}

	t.Run("write-up scripts", func(t *testing.T) {
		check(t, `vip       = "`+vip+`"`, `scheduler = "rr"`, `realserver "realserver-1" {}`, `realserver "realserver-2" {}`)
	})

	t.Run("UDP service with weights and persistence", func(t *testing.T) {
		const dns = "198.18.48.190"
		sh(t, "director", "ipvsadm -A -u "+dns+":53 -s wrr -p 300 && ipvsadm -a -u "+dns+":53 -r "+rip1+":53 -i -w 3 && "+
			"ipvsadm -a -u "+dns+":53 -r "+rip2+":53 -i -w 1 && ip addr add "+dns+"/32 dev tunl0")
		for _, rs := range []string{"rs1", "rs2"} {
			sh(t, rs, "ip addr add "+dns+"/32 dev tunl0")
		}
		check(t, `vip         = "`+dns+`"`, `protocol    = "udp"`, `persistence = 300`, `scheduler   = "wrr"`,
			"realserver \"realserver-1\" {\n    weight = 3\n  }", `realserver "realserver-2" {}`)
	})
}

// serviceChanges finds the change lines of diff and apply on anything but the boot files: the
// imported plan leaves the hand-made kernel state exactly as it is.
var serviceChanges = regexp.MustCompile(`(?m)^  [-+~] (ipvs|tunnel|sysctl|kmod) .*$`)

func mustRun(t *testing.T, want int, args ...string) string {
	t.Helper()
	out, code := runTunplan(t, args...)
	if code != want {
		t.Fatalf("tunplan %s: exit %d, want %d\n%s", strings.Join(args, " "), code, want, out)
	}
	return out
}
