package plans

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// TestPlanNeedsHostsAndServices: a plan without hosts or without virtual services is an error at the
// start of the file, with a block to add; an empty file has both errors.
func TestPlanNeedsHostsAndServices(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want []string // the summaries of the errors at 1:1
	}{
		{"empty file", "", []string{"No hosts", "No virtual services"}},
		{"blank lines", "\n\n\n", []string{"No hosts", "No virtual services"}},
		{"comments only", "# nothing yet\n// still nothing\n", []string{"No hosts", "No virtual services"}},
		{"variables and ssh only", "variable \"vip\" {\n  default = \"198.18.48.10\"\n}\nssh {\n  user = \"deploy\"\n}\n", []string{"No hosts", "No virtual services"}},
		{"hosts only", base, []string{"No virtual services"}},
		{"services only", svc(), []string{"No hosts"}},
		{"dynamic hosts over nothing", "dynamic \"host\" {\n  for_each = []\n  labels   = [host.value]\n  content {\n    role    = \"director\"\n    address = host.value\n  }\n}\n" + svc(),
			[]string{"No hosts"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, files, diags := Load("plan.hcl", []byte(c.src), nil)
			if p != nil || !diags.HasErrors() {
				t.Fatalf("want errors, got plan %v and %v", p, diags)
			}
			var got []string
			for _, d := range diags {
				if d.Summary != "No hosts" && d.Summary != "No virtual services" {
					continue
				}
				got = append(got, d.Summary)
				if d.Severity != hcl.DiagError || d.Subject == nil || d.Subject.Filename != "plan.hcl" || d.Subject.Start != hcl.InitialPos || d.Subject.End != hcl.InitialPos {
					t.Errorf("%s: severity %v at %v, want an error at plan.hcl 1:1", d.Summary, d.Severity, d.Subject)
				}
				if block := map[string]string{"No hosts": `host "`, "No virtual services": `virtual_service "web" {`}[d.Summary]; !strings.Contains(d.Detail, block) {
					t.Errorf("%s: detail %q shows no %s block", d.Summary, d.Detail, block)
				}
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("got %q, want %q (all: %v)", got, c.want, diags)
			}
			var b strings.Builder
			if err := hcl.NewDiagnosticTextWriter(&b, files, 100, false).WriteDiagnostics(diags); err != nil || !strings.Contains(b.String(), "on plan.hcl line 1") {
				t.Errorf("rendered (%v):\n%s", err, b.String())
			}
		})
	}
}

// TestEmptyPlanFile: LoadFile of an empty file points at that file.
func TestEmptyPlanFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tunplan.hcl")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p, _, diags := LoadFile(path, nil)
	if p != nil || len(diags) != 2 {
		t.Fatalf("want 2 errors, got %v", diags)
	}
	for _, d := range diags {
		if d.Subject == nil || d.Subject.Filename != path || fmt.Sprint(d.Subject.Start.Line, d.Subject.Start.Column) != "1 1" {
			t.Errorf("%s at %v, want %s:1,1", d.Summary, d.Subject, path)
		}
	}
}

// TestNoServicesSuggestsThePlansHosts: the virtual_service shown names a director and a realserver
// of the plan.
func TestNoServicesSuggestsThePlansHosts(t *testing.T) {
	src := "host \"edge\" {\n  role    = \"director\"\n  address = \"198.18.0.1\"\n}\nhost \"web1\" {\n  role    = \"realserver\"\n  address = \"198.18.1.1\"\n}\n"
	_, _, diags := Load("plan.hcl", []byte(src), nil)
	if len(diags) != 1 || diags[0].Summary != "No virtual services" || !strings.Contains(diags[0].Detail, "directors = [\"edge\"]\n    realserver \"web1\" {}") {
		t.Errorf("got %v", diags)
	}
}
