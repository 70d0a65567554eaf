// Package e2e proves tunplan end to end on the lab's real kernel: the tunplan binary runs in the lab's
// control namespace and reaches the lab hosts over real sshd; traffic goes from the lab client to the VIP.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tunplan/tunplan/testinfra/lab"
)

// TestMain builds tunplan (helper embedded) on the host, then runs the tests inside the lab VM.
func TestMain(m *testing.M) {
	if spec := os.Getenv(lab.LoopEnv); spec != "" {
		os.Exit(lab.RequestLoop(spec))
	}
	if !lab.Inside() {
		bin, err := buildTunplan()
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			os.Exit(1)
		}
		os.Setenv("TUNPLAN_BIN", bin)
		os.Setenv("TUNPLAN_OLDER_BIN", filepath.Join(filepath.Dir(bin), "tunplan-older"))
		os.Setenv("TUNPLAN_FAULT_HELPER", filepath.Join(filepath.Dir(bin), "tunplan-helper-faultinject"))
	}
	lab.Main(m)
}

// buildTunplan builds tunplan, the fault-injecting test helper, and first an older build of tunplan:
// the same code with a helper whose bytes, hence hash and file name on a host, differ (a linker
// flag sets a string no code reads), as after an upgrade.
func buildTunplan() (string, error) {
	root, err := filepath.Abs("../..")
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "tunplan-e2e-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "tunplan")
	for _, args := range [][]string{
		{"make", "-s", "-C", root, "helper", "LDFLAGS=-s -w -X main.build=older"},
		{"go", "build", "-o", filepath.Join(dir, "tunplan-older"), "./cmd/tunplan"},
		{"make", "-s", "-C", root, "helper"},
		{"go", "build", "-o", bin, "./cmd/tunplan"},
		{"go", "build", "-tags", "faultinject", "-o", filepath.Join(dir, "tunplan-helper-faultinject"), "./cmd/tunplan-helper"},
	} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("%v: %w", args, err)
		}
	}
	return bin, nil
}
