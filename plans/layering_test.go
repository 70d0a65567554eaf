package plans

import (
	"os/exec"
	"strings"
	"testing"
)

// The plan is data: plans/ (its import builder too) links no SSH client and no orchestration; how
// to reach a host is the plain target.Target, which inventory dials.
func TestPlansLinkNoConnecting(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./...").Output()
	if err != nil {
		t.Fatalf("go list -deps ./...: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed only %v", deps)
	}
	for _, d := range deps {
		switch {
		case d == "github.com/tunplan/tunplan/inventory", strings.HasPrefix(d, "github.com/tunplan/tunplan/inventory/fleet"),
			strings.HasPrefix(d, "golang.org/x/crypto/ssh"), strings.HasPrefix(d, "github.com/pkg/sftp"):
			t.Errorf("plans depends on %s", d)
		}
	}
}
