package plans

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestHostileInputs: each kind of input that is not a plan gives one clear diagnostic at a position.
func TestHostileInputs(t *testing.T) {
	deep := strings.Repeat("[", MaxNesting+1)
	cases := []struct {
		name, src, summary, pos string
	}{
		{"NUL byte", "host \"a\" {\x00}", "The plan is not a text file", "1:11"},
		{"invalid UTF-8", "# comment\nhost \"\xff\" {}", "The plan is not a text file", "2:7"},
		{"deep nesting", "locals {\n  x = " + deep + "\n}", "The plan is nested too deeply", "2:" + itoa(7+MaxNesting-1)},
		{"huge range", "locals {\n  x = range(1000000000)\n}", "Error in function call", "2:7"},
		{"unicode host name", "host \"lvs-é\" {\n  role = \"director\"\n  address = \"198.18.48.181\"\n}", "Invalid host name", "1:6"},
		{"zoned address", "host \"a\" {\n  role = \"director\"\n  address = \"fe80::1%eth0\"\n}", "Invalid IP address", "3:13"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, _, diags := Load("bad.hcl", []byte(c.src), nil)
			if p != nil || !diags.HasErrors() {
				t.Fatalf("no error for %q", c.src)
			}
			d := diags[0]
			if c.summary != "" && d.Summary != c.summary {
				t.Errorf("summary %q, want %q (detail %q)", d.Summary, c.summary, d.Detail)
			}
			if d.Subject == nil || d.Subject.Filename != "bad.hcl" || itoa(d.Subject.Start.Line)+":"+itoa(d.Subject.Start.Column) != c.pos {
				t.Errorf("position %v, want %s (%s: %s)", d.Subject, c.pos, d.Summary, d.Detail)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestTooLargePlanIsRefusedBeforeReading(t *testing.T) {
	path := filepath.Join(t.TempDir(), "huge.hcl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(MaxPlanBytes + 1)
	f.Close()
	_, _, diags := LoadFile(path, nil)
	if len(diags) != 1 || diags[0].Summary != "The plan is too large" || !strings.Contains(diags[0].Detail, "16777217 bytes") {
		t.Errorf("diagnostics %v", diags)
	}
}

// TestTruncatedPlans cuts the example at every byte: never a panic, and every error has a position.
func TestTruncatedPlans(t *testing.T) {
	src, err := os.ReadFile("../examples/two-region/tunplan.hcl")
	if err != nil {
		t.Fatal(err)
	}
	for i := range src {
		p, _, diags := Load("cut.hcl", src[:i], nil)
		if diags.HasErrors() && p != nil {
			t.Fatalf("cut at %d: plan with errors", i)
		}
		for _, d := range diags {
			if d.Severity == 1 && d.Subject == nil {
				t.Fatalf("cut at %d: error without position: %s", i, d.Summary)
			}
		}
	}
}
