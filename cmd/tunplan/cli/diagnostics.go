package cli

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/fatih/color"
	"github.com/hashicorp/hcl/v2"
)

// writeDiagnostics writes plan diagnostics as text, each headed by its place as file:line:column
// (on a terminal or not), with the source line and a caret under the range when the file is known:
//
//	Error: plan.hcl:3:3: Unsupported argument
//	   3 |   adress = "198.18.0.1"
//	     |   ^^^^^^
//	  An argument named "adress" is not expected here. Did you mean "address"?
func writeDiagnostics(s *IOStreams, w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics) {
	for _, d := range diags {
		sev := s.paint(color.FgRed, color.Bold)("Error")
		if d.Severity == hcl.DiagWarning {
			sev = s.paint(color.FgYellow, color.Bold)("Warning")
		}
		loc := ""
		if r := d.Subject; r != nil {
			loc = fmt.Sprintf("%s:%d:%d: ", r.Filename, r.Start.Line, r.Start.Column)
		}
		fmt.Fprintf(w, "%s: %s%s\n", sev, loc, d.Summary)
		if line, caret, ok := snippet(files, d.Subject); ok {
			fmt.Fprintf(w, "%5d | %s\n      | %s\n", d.Subject.Start.Line, line, caret)
		}
		for _, l := range strings.Split(strings.TrimSpace(d.Detail), "\n") {
			if l != "" {
				fmt.Fprintf(w, "  %s\n", l)
			}
		}
		fmt.Fprintln(w)
	}
}

// snippet is the source line where r starts and a caret line under r's part of it (tabs kept, so
// the carets line up).
func snippet(files map[string]*hcl.File, r *hcl.Range) (line, caret string, ok bool) {
	if r == nil || files[r.Filename] == nil {
		return "", "", false
	}
	lines := bytes.Split(files[r.Filename].Bytes, []byte("\n"))
	if r.Start.Line < 1 || r.Start.Line > len(lines) {
		return "", "", false
	}
	src := []rune(strings.TrimRight(string(lines[r.Start.Line-1]), "\r"))
	start := min(max(r.Start.Column-1, 0), len(src))
	end := len(src)
	if r.End.Line == r.Start.Line {
		end = min(max(r.End.Column-1, start+1), len(src))
	}
	var b strings.Builder
	for _, c := range src[:start] {
		if c == '\t' {
			b.WriteRune('\t')
		} else {
			b.WriteRune(' ')
		}
	}
	b.WriteString(strings.Repeat("^", max(end-start, 1)))
	return string(src), b.String(), true
}

// diagnosticJSON is one diagnostic in --json output.
type diagnosticJSON struct {
	Severity string `json:"severity"` // "error" or "warning"
	Summary  string `json:"summary"`
	Detail   string `json:"detail,omitempty"`
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
	Column   int    `json:"column,omitempty"`
}

func diagnosticsJSON(diags hcl.Diagnostics) []diagnosticJSON {
	out := []diagnosticJSON{}
	for _, d := range diags {
		j := diagnosticJSON{Severity: "error", Summary: d.Summary, Detail: d.Detail}
		if d.Severity == hcl.DiagWarning {
			j.Severity = "warning"
		}
		if r := d.Subject; r != nil {
			j.File, j.Line, j.Column = r.Filename, r.Start.Line, r.Start.Column
		}
		out = append(out, j)
	}
	return out
}
