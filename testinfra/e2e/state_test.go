package e2e

import (
	"strings"
	"testing"

	"github.com/tunplan/tunplan/modules/protocol"
	"github.com/tunplan/tunplan/testinfra/lab"
)

// A generation file cut short on the director (what a crash leaves of a file whose data never
// reached the disk): diff exits 1 naming the file instead of reporting no drift, doctor exits 2
// with the repair, and the boot restore falls back to the newest generation it can read. Doing
// what doctor says makes apply and diff converge again.
func TestCorruptGeneration(t *testing.T) {
	reset(t)
	mustTunplan(t, example, 0, "apply", "--auto-approve") // generations 0 and 1
	first := kernelState(t)
	wrr := planVariant(t, example, `scheduler = "rr"`, `scheduler = "wrr"`)
	mustTunplan(t, wrr, 0, "apply", "--auto-approve") // the director's generation 2
	gen2 := protocol.StateDir + "/generations/000002.json"
	sh(t, "director", "head -c 100 "+gen2+" > /tmp/cut && mv /tmp/cut "+gen2)

	out := mustTunplan(t, wrr, 1, "diff")
	if !strings.Contains(out, "generation 2 ("+gen2+") is unreadable") || !strings.Contains(out, "tunplan doctor") {
		t.Errorf("diff of a cut generation:\n%s", out)
	}
	fix := "mv " + gen2 + " " + gen2 + ".corrupt"
	if out := mustTunplan(t, wrr, 2, "doctor"); !strings.Contains(out, gen2) || !strings.Contains(out, fix) {
		t.Errorf("doctor:\n%s", out)
	}

	if err := lab.Reboot(false, "director"); err != nil {
		t.Fatal(err)
	}
	log, err := lab.Boot("director")
	if err != nil || !strings.Contains(log, "generation 2 ("+gen2+") is unreadable") || !strings.Contains(log, "restoring generation 1 instead") {
		t.Errorf("boot: %v\n%s", err, log)
	}
	if got := kernelState(t); !equalStates(got, first) {
		t.Errorf("after the boot:\n%v\nwant generation 1's state:\n%v", got, first)
	}
	assertTunnelTraffic(t)

	sh(t, "director", fix)
	mustTunplan(t, wrr, 0, "doctor")
	mustTunplan(t, wrr, 0, "apply", "--auto-approve")
	mustTunplan(t, wrr, 0, "diff")
}
