package cli

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, _, code := runCLI(t, &fakeHosts{}, "", args...)
		if code != exitOK || !strings.HasPrefix(out, "tunplan ") || !strings.Contains(out, "go1.") || !strings.Contains(out, "helper") {
			t.Errorf("%v: exit %d\n%s", args, code, out)
		}
	}
	out, _, _ := runCLI(t, &fakeHosts{}, "", "version", "--help")
	if strings.Contains(out, "--file") || strings.Contains(out, "--hosts") || !strings.Contains(out, "Examples:") {
		t.Errorf("version --help lists plan flags or lacks an example:\n%s", out)
	}
}

func TestEveryCommandHelpHasDescriptionAndExample(t *testing.T) {
	for _, verb := range []string{"apply", "diff", "plan", "rollback", "validate", "fmt", "version"} {
		out, _, code := runCLI(t, &fakeHosts{}, "", verb, "--help")
		if code != exitOK || !strings.Contains(out, "Examples:") || len(strings.SplitN(out, "\n", 2)[0]) < 20 {
			t.Errorf("%s --help: exit %d\n%s", verb, code, out)
		}
	}
}

func TestPlanIsDiff(t *testing.T) {
	want, _, wantCode := runCLI(t, driftingHosts(), "", "diff", "-f", example)
	got, _, code := runCLI(t, driftingHosts(), "", "plan", "-f", example)
	if got != want || code != wantCode || code != exitDrift {
		t.Errorf("plan: exit %d\n%s\nwant exit %d\n%s", code, got, wantCode, want)
	}
}

// Bad numbers are refused before any host is contacted.
func TestBadNumbersAreRefusedBeforeAnyHost(t *testing.T) {
	cases := []struct {
		env  string
		args []string
		want string
	}{
		{"", []string{"diff", "--parallel", "0"}, "--parallel 0: want a whole number of hosts, 1 or more"},
		{"abc", []string{"apply", "--auto-approve"}, `TUNPLAN_PARALLEL="abc": want a whole number of hosts, 1 or more`},
		{"-2", []string{"diff"}, `TUNPLAN_PARALLEL="-2"`},
		{"", []string{"rollback", "--to", "-5"}, "--to -5: want a run: its number from tunplan rollback --list (0 or more) or its id"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			if c.env != "" {
				t.Setenv("TUNPLAN_PARALLEL", c.env)
			}
			f := driftingHosts()
			_, errOut, code := runCLI(t, f, "", append(c.args, "-f", example)...)
			if code != exitError || !strings.Contains(errOut, c.want) || len(f.calls) != 0 {
				t.Errorf("exit %d, calls %v, stderr %q", code, f.calls, errOut)
			}
		})
	}
	t.Setenv("TUNPLAN_PARALLEL", "7")
	if _, _, code := runCLI(t, &fakeHosts{}, "", "diff", "-f", example); code != exitOK {
		t.Errorf("TUNPLAN_PARALLEL=7: exit %d", code)
	}
}

// With --json, a plan with errors gives a JSON document of its diagnostics on stdout.
func TestJSONPlanErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.hcl")
	os.WriteFile(bad, []byte("host \"a\" {\n  role = \"director\"\n  adress = \"198.18.0.1\"\n}\n"), 0o644)
	for _, verb := range [][]string{{"validate"}, {"diff"}, {"apply", "--auto-approve"}} {
		out, errOut, code := runCLI(t, &fakeHosts{}, "", append(verb, "--json", "-f", bad)...)
		var doc struct {
			Status      string
			Diagnostics []diagnosticJSON
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil || code != exitError || errOut != "" {
			t.Fatalf("%v: exit %d, %v\nstdout %s\nstderr %s", verb, code, err, out, errOut)
		}
		d := doc.Diagnostics[0]
		if doc.Status != "error" || d.Severity != "error" || d.File != bad || d.Line != 3 || d.Column != 3 || d.Summary != "Unsupported argument" || !strings.Contains(d.Detail, "address") {
			t.Errorf("%v: %+v", verb, doc)
		}
	}
}

func TestDiffJSONCountsHostErrors(t *testing.T) {
	f := &fakeHosts{fail: map[string]error{"beijing": errors.New("host beijing: connect 198.19.0.22:22: connection refused")}}
	out, _, code := runCLI(t, f, "", "diff", "--json", "-f", example)
	var doc struct {
		Status  string
		Summary struct{ Errors int }
		Hosts   []hostChanges
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != exitError || doc.Status != "error" || doc.Summary.Errors != 1 || doc.Hosts[0].Error == "" {
		t.Errorf("exit %d, %v: %s", code, err, out)
	}
}

// A host's error is printed once, on standard error, whatever the command.
func TestHostErrorsArePrintedOnce(t *testing.T) {
	f := &fakeHosts{fail: map[string]error{"beijing": errors.New("host beijing: connect 198.19.0.22:22: connection refused")}}
	for _, args := range [][]string{{"diff"}, {"apply", "--auto-approve"}, {"rollback"}} {
		out, errOut, code := runCLI(t, f, "", append(args, "-f", example)...)
		if n := strings.Count(out+errOut, "connection refused"); code != exitError || n != 1 {
			t.Errorf("%v: exit %d, error printed %d times\n%s\n%s", args, code, n, out, errOut)
		}
	}
	f = driftingHosts()
	f.applyErr = map[string]string{"shanghai": "sysctl: permission denied"}
	out, errOut, _ := runCLI(t, f, "", "apply", "--auto-approve", "-f", example)
	if n := strings.Count(out+errOut, "permission denied"); n != 1 {
		t.Errorf("apply failure printed %d times\n%s\n%s", n, out, errOut)
	}
}

func TestApplyExitCodeAndJSON(t *testing.T) {
	if _, _, code := runCLI(t, driftingHosts(), "", "apply", "--auto-approve", "--exit-code", "-f", example); code != exitChanged {
		t.Errorf("changes applied: exit %d, want %d", code, exitChanged)
	}
	if _, _, code := runCLI(t, &fakeHosts{}, "", "apply", "--auto-approve", "--exit-code", "-f", example); code != exitOK {
		t.Errorf("no changes: exit %d, want 0", code)
	}
	out, _, code := runCLI(t, driftingHosts(), "", "apply", "--auto-approve", "--json", "-f", example)
	var doc struct {
		Status string
		Hosts  []struct {
			Host   string
			Phases []phaseJSON
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != exitOK || doc.Status != "applied" {
		t.Fatalf("exit %d, %v: %s", code, err, out)
	}
	var lvs01 []string
	for _, p := range doc.Hosts[1].Phases {
		lvs01 = append(lvs01, string(p.Phase)+"="+string(p.Outcome))
	}
	if doc.Hosts[1].Host != "lvs01" || strings.Join(lvs01, ",") != "diff=,directors=applied" {
		t.Errorf("lvs01 phases %v", lvs01)
	}
	if _, errOut, code := runCLI(t, driftingHosts(), "", "apply", "--json", "-f", example); code != exitError || !strings.Contains(errOut, "--json needs --auto-approve") {
		t.Errorf("--json without --auto-approve: exit %d %s", code, errOut)
	}
}

func TestFmt(t *testing.T) {
	dir := t.TempDir()
	messy := filepath.Join(dir, "messy.hcl")
	tidy := filepath.Join(dir, "tidy.hcl")
	os.WriteFile(messy, []byte("host \"a\" {\nrole=\"director\"\n    address   = \"198.18.0.1\"\n}\n"), 0o600)
	os.WriteFile(tidy, []byte("host \"a\" {\n  role    = \"director\"\n  address = \"198.18.0.1\"\n}\n"), 0o600)
	out, _, code := runCLI(t, &fakeHosts{}, "", "fmt", "--check", messy, tidy)
	if code != exitUnformatted || out != messy+"\n" {
		t.Errorf("--check: exit %d, listed %q", code, out)
	}
	if b, _ := os.ReadFile(messy); !strings.Contains(string(b), "role=\"director\"") {
		t.Errorf("--check changed the file:\n%s", b)
	}
	if out, _, code := runCLI(t, &fakeHosts{}, "", "fmt", messy, tidy); code != exitOK || out != messy+"\n" {
		t.Errorf("fmt: exit %d, listed %q", code, out)
	}
	want, _ := os.ReadFile(tidy)
	if got, _ := os.ReadFile(messy); string(got) != string(want) {
		t.Errorf("formatted:\n%s\nwant:\n%s", got, want)
	}
	if _, _, code := runCLI(t, &fakeHosts{}, "", "fmt", "--check", messy); code != exitOK {
		t.Errorf("--check after fmt: exit %d", code)
	}
	broken := filepath.Join(dir, "broken.hcl")
	os.WriteFile(broken, []byte("host \"a\" {\n"), 0o600)
	if _, errOut, code := runCLI(t, &fakeHosts{}, "", "fmt", broken); code != exitError || !strings.Contains(errOut, "broken.hcl:") {
		t.Errorf("broken: exit %d %s", code, errOut)
	}
}
