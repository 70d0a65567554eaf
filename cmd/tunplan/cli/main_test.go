package cli

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMain gives the tests a home of their own with an empty ~/.ssh/known_hosts: the example plan
// reads it by default, and validate warns when it is missing.
func TestMain(m *testing.M) {
	home, err := os.MkdirTemp("", "tunplan-cli-home-")
	if err != nil {
		panic(err)
	}
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		panic(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "known_hosts"), nil, 0o600); err != nil {
		panic(err)
	}
	os.Setenv("HOME", home)
	os.Setenv("USERPROFILE", home) // where os.UserHomeDir looks on Windows
	code := m.Run()
	os.RemoveAll(home)
	os.Exit(code)
}
