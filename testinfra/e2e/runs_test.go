package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestRollbackToARunAcrossHostsWithDifferentHistories is issue 10: generation numbers are per
// host, so a rollback names a run. Run 1 applies the director with shanghai alone; run 2 applies
// the full two-region plan, so beijing's generation 1 is run 2 where the director's is run 1.
// Rolling back to run 1 puts the director back to one destination, leaves shanghai alone, and puts
// beijing back to its generation 0 (before tunplan: no VIP on tunl0).
func TestRollbackToARunAcrossHostsWithDifferentHistories(t *testing.T) {
	reset(t)
	first := shanghaiOnlyPlan(t)
	mustTunplan(t, first, 0, "apply", "--auto-approve")
	director1 := sh(t, "director", "ipvsadm -Sn | sort")
	if !strings.Contains(director1, "-r "+rip1+":80") || strings.Contains(director1, rip2) {
		t.Fatalf("run 1 did not make the director send to shanghai alone:\n%s", director1)
	}
	shanghaiGens := sh(t, "rs1", "ls /var/lib/tunplan/generations")

	// Both runs may end in the same second: the list orders them as the director recorded them.
	mustTunplan(t, example, 0, "apply", "--auto-approve")
	if d := sh(t, "director", "ipvsadm -Sn | sort"); !strings.Contains(d, "-r "+rip2+":80") {
		t.Fatalf("run 2 did not add beijing to the director:\n%s", d)
	}
	if a := sh(t, "rs2", "ip -4 -o addr show dev tunl0"); !strings.Contains(a, vip+"/32") {
		t.Fatalf("run 2 did not put the VIP on beijing's tunl0:\n%s", a)
	}

	list := mustTunplan(t, example, 0, "rollback", "--list")
	rows := map[string]string{} // number: the row
	for _, line := range strings.Split(list, "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			rows[f[0]] = line
		}
	}
	run2, run1 := rows["1"], rows["2"]
	for _, c := range []struct {
		row       string
		want, not []string
	}{
		{run2, []string{"apply", "lvs01 (2)", "beijing (1)"}, []string{"shanghai"}},
		{run1, []string{"apply", "lvs01 (1)", "shanghai (1)"}, []string{"beijing"}},
		{rows["0"], []string{"before tunplan"}, nil},
	} {
		for _, w := range c.want {
			if !strings.Contains(c.row, w) {
				t.Errorf("rollback --list: row %q lacks %q:\n%s", c.row, w, list)
			}
		}
		for _, n := range c.not {
			if strings.Contains(c.row, n) {
				t.Errorf("rollback --list: row %q names %q:\n%s", c.row, n, list)
			}
		}
	}
	if _, ok := rows["3"]; ok || run1 == "" {
		t.Fatalf("rollback --list does not show exactly two runs:\n%s", list)
	}
	run1ID := strings.Fields(run1)[1]

	out := mustTunplan(t, example, 0, "rollback", "--to", run1ID[:8])
	for _, want := range []string{"Rolling back to the state after run 2: " + run1ID, "lvs01: generation 2 => 1",
		"beijing: generation 1 => 0", "shanghai: already at generation 1: left alone", "Rollback complete!"} {
		if !strings.Contains(out, want) {
			t.Errorf("rollback --to %s does not say %q:\n%s", run1ID[:8], want, out)
		}
	}
	if d := sh(t, "director", "ipvsadm -Sn | sort"); d != director1 {
		t.Errorf("the director is not back to run 1's table:\n--- want\n%s\n--- got\n%s", director1, d)
	}
	if a := sh(t, "rs2", "ip -4 -o addr show dev tunl0 2>/dev/null || true"); strings.Contains(a, vip) {
		t.Errorf("beijing still has the VIP on tunl0 after going back to its generation 0:\n%s", a)
	}
	if g := sh(t, "rs1", "ls /var/lib/tunplan/generations"); g != shanghaiGens {
		t.Errorf("shanghai was changed: generations %q, before %q", g, shanghaiGens)
	}
	mustTunplan(t, first, 0, "diff")

	// The rollback is a run too: the newest. Going to run 2 (now number 2) redoes it.
	list = mustTunplan(t, example, 0, "rollback", "--list")
	if !regexp.MustCompile(`(?m)^\s*1\s+\S+\s+\S+\s+rollback\s.*beijing \(2\), lvs01 \(3\)$`).MatchString(list) {
		t.Errorf("rollback --list does not show the rollback as the newest run:\n%s", list)
	}
	mustTunplan(t, example, 0, "rollback", "--to", "2")
	mustTunplan(t, example, 0, "diff")
}

// shanghaiOnlyPlan writes the two-region plan without beijing: neither its host block (a host no
// service uses would get an empty state) nor its place in the service.
func shanghaiOnlyPlan(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	for _, re := range []string{`(?s)\n# Realserver in the Beijing region[^\n]*\nhost "beijing" \{.*?\n\}\n`, `(?s)\n  realserver "beijing" \{.*?\n  \}\n`} {
		cut := regexp.MustCompile(re).ReplaceAllString(s, "\n")
		if cut == s {
			t.Fatalf("the example has no %s to drop", re)
		}
		s = cut
	}
	if strings.Contains(s, `"beijing"`) {
		t.Fatalf("beijing is still in the plan:\n%s", s)
	}
	p := filepath.Join(t.TempDir(), "shanghai-only.hcl")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
