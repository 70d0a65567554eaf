package plans

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the plan loader: it must never panic or hang; an error means no
// plan, and every error points into the file; a plan renders the same desired state twice.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.hcl")
	examples, _ := filepath.Glob("../examples/*/tunplan.hcl")
	for _, p := range append(seeds, examples...) {
		if src, err := os.ReadFile(p); err == nil {
			f.Add(src)
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		p, _, diags := Load("fuzz.hcl", src, nil)
		if diags.HasErrors() {
			if p != nil {
				t.Fatal("plan returned with errors")
			}
			for _, d := range diags {
				if d.Subject == nil || d.Subject.Filename != "fuzz.hcl" {
					t.Fatalf("error without a position in the file: %s: %s", d.Summary, d.Detail)
				}
			}
			return
		}
		a, _ := json.Marshal(p.Desired())
		p2, _, _ := Load("fuzz.hcl", src, nil)
		b, _ := json.Marshal(p2.Desired())
		if string(a) != string(b) {
			t.Fatal("desired state differs between two loads")
		}
	})
}
