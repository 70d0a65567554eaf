package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tunplan/tunplan/modules/protocol"
	"github.com/tunplan/tunplan/plans"
	"github.com/tunplan/tunplan/testinfra/lab"
)

// TestFaultAtEveryStepRestoresSnapshot applies a changed plan to the director with the test build of
// the helper failing before step 1, then 2, … until the apply has no step left to fail: after each
// fault the director's kernel equals what it was before the apply.
func TestFaultAtEveryStepRestoresSnapshot(t *testing.T) {
	p, _, diags := plans.LoadFile(changedPlan(t), map[string]string{"ssh_key": lab.SSHKey(), "known_hosts": lab.KnownHosts()})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	req, err := json.Marshal(protocol.Request{Op: protocol.OpApply, Host: "lvs01", Desired: p.Desired()["lvs01"], Actor: "fault-test"})
	if err != nil {
		t.Fatal(err)
	}
	reqFile := filepath.Join(lab.RunDir(), "fault-request.json")
	if err := os.WriteFile(reqFile, req, 0o644); err != nil {
		t.Fatal(err)
	}
	helper := faultHelper(t)
	faulted := 0
	for n := 1; n < 20; n++ {
		reset(t)
		mustTunplan(t, example, 0, "apply", "--auto-approve")
		before := sh(t, "director", directorState)
		out := sh(t, "director", "TUNPLAN_FAULT_AT="+strconv.Itoa(n)+" "+helper+" < "+reqFile)
		var resp protocol.Response
		if err := json.Unmarshal([]byte(out), &resp); err != nil {
			t.Fatalf("fault %d: helper answered %q: %v", n, out, err)
		}
		if resp.Outcome == "applied" {
			if n <= len(resp.Changes) {
				t.Fatalf("fault %d: applied with %d steps", n, len(resp.Changes))
			}
			break // n is past the last step
		}
		faulted++
		if resp.Outcome != "restored" || !strings.Contains(resp.Error, "injected fault before step "+strconv.Itoa(n)) {
			t.Errorf("fault %d: outcome %q error %q", n, resp.Outcome, resp.Error)
		}
		if after := sh(t, "director", directorState); after != before {
			t.Errorf("fault before step %d (%s): not restored\n--- before\n%s\n--- after\n%s", n, resp.Changes[n-1].Address, before, after)
		}
		mustTunplan(t, example, 0, "diff", "--hosts", "lvs01")
	}
	if faulted < 3 {
		t.Errorf("only %d steps faulted: the changed plan should take several steps", faulted)
	}
}

// faultHelper puts the fault-injection build of the helper where every lab host can run it (the
// hosts have a private /tmp) and returns its path.
func faultHelper(t *testing.T) string {
	t.Helper()
	bin, err := os.ReadFile(os.Getenv("TUNPLAN_FAULT_HELPER"))
	if err != nil {
		t.Fatal(err)
	}
	helper := filepath.Join(lab.RunDir(), "tunplan-helper-faultinject")
	if err := os.WriteFile(helper, bin, 0o700); err != nil {
		t.Fatal(err)
	}
	return helper
}

// directorState is the director's kernel state the issue compares.
const directorState = "ipvsadm -Sn | sort; ip -4 -o addr show dev tunl0 | awk '{print $4}'; ip -o link show tunl0 | grep -o 'state [A-Z]*'; cat /proc/sys/net/ipv4/ip_forward"
