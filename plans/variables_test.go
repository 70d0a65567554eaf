package plans

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// TestUndeclaredVariable: a reference to a variable the plan does not declare gets tunplan's own
// diagnostic, at the whole var.x, wherever the reference is (attribute, local, template, function
// argument, dynamic block), instead of HCL's "Unsupported attribute".
func TestUndeclaredVariable(t *testing.T) {
	const vip = "variable \"vip\" {\n  default = \"198.18.48.10\"\n}\n" // lines 13-15 after base
	cases := []struct {
		name   string
		src    string
		detail string
		rng    string // start-end line:column of the diagnostic's subject
	}{
		{"attribute, a close name", base + vip + svc(`vip = var.vipp`),
			`no variable "vipp" is declared; did you mean "vip"?`, "17:9-17:17"},
		{"attribute, no variables", base + svc(`vip = var.vip`),
			`no variable "vip" is declared; declare it with variable "vip" { default = … } (--var vip=VALUE then overrides the default), or fix the name.`, "14:9-14:16"},
		{"attribute, no close name", base + vip + svc(`port = var.http_port`),
			`no variable "http_port" is declared; declare it with variable "http_port" { default = … } (--var http_port=VALUE then overrides the default), or fix the name. The plan declares: vip.`, "18:10-18:23"},
		{"index form", base + vip + svc(`vip = var["vipp"]`),
			`no variable "vipp" is declared; did you mean "vip"?`, "17:9-17:20"},
		{"template", base + vip + svc(`vip = "${var.vipp}"`),
			`no variable "vipp" is declared; did you mean "vip"?`, "17:12-17:20"},
		{"function argument", base + "variable \"port\" {\n  default = 80\n}\n" + svc(`port = max(80, var.prot)`),
			`no variable "prot" is declared; did you mean "port"?`, "18:18-18:26"},
		{"local", base + vip + "locals {\n  v = var.vipp\n}\n" + svc(`vip = local.v`),
			`no variable "vipp" is declared; did you mean "vip"?`, "17:7-17:15"},
		{"dynamic for_each", base + vip + svc("dynamic \"realserver\" {\n    for_each = var.vips\n    labels   = [realserver.value]\n    content {}\n  }"),
			`no variable "vips" is declared; did you mean "vip"?`, "22:16-22:24"},
		{"dynamic content", base + "variable \"weight\" {\n  default = 1\n}\n" + svc("dynamic \"realserver\" {\n    for_each = [\"r2\"]\n    labels   = [realserver.value]\n    content {\n      weight = var.wieght\n    }\n  }"),
			`no variable "wieght" is declared; did you mean "weight"?`, "25:16-25:26"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, _, diags := Load("test.hcl", []byte(c.src), nil)
			if p != nil {
				t.Errorf("Load returned a plan despite errors")
			}
			var found int
			var all []string
			for _, d := range diags {
				all = append(all, fmt.Sprintf("%s: %s; %s", d.Subject, d.Summary, d.Detail))
				if d.Summary == "Unsupported attribute" {
					t.Errorf("HCL's diagnostic was not replaced: %s: %s", d.Subject, d.Detail)
				}
				if d.Summary != "Undeclared variable" {
					continue
				}
				found++
				rng := fmt.Sprintf("%d:%d-%d:%d", d.Subject.Start.Line, d.Subject.Start.Column, d.Subject.End.Line, d.Subject.End.Column)
				if d.Severity != hcl.DiagError || d.Detail != c.detail || rng != c.rng || d.Subject.Filename != "test.hcl" {
					t.Errorf("got %s %s %q\nwant %s %q", d.Subject.Filename, rng, d.Detail, c.rng, c.detail)
				}
			}
			if found != 1 {
				t.Errorf("%d Undeclared variable diagnostics, want 1; all:\n%s", found, strings.Join(all, "\n"))
			}
		})
	}
}

// TestDeclaredVariableErrorsAreHCLs: an error past a declared variable (var.vip.x) is not about an
// undeclared variable and keeps HCL's diagnostic.
func TestDeclaredVariableErrorsAreHCLs(t *testing.T) {
	src := base + "variable \"vip\" {\n  default = \"198.18.48.10\"\n}\n" + svc(`vip = var.vip.x`)
	_, _, diags := Load("test.hcl", []byte(src), nil)
	for _, d := range diags {
		if d.Summary == "Undeclared variable" {
			t.Errorf("%s: %s", d.Subject, d.Detail)
		}
	}
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "Unsupported attribute") {
		t.Errorf("want HCL's Unsupported attribute, got %v", diags)
	}
}
