// Package testinfra checks what can be checked of the Vagrant lab without booting it: the
// Vagrantfile's syntax (ruby -c), its hosts and addresses, and `vagrant validate` (testinfra/deps.sh
// installs Debian's vagrant).
package testinfra

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestVagrantfileSyntax(t *testing.T) {
	out, err := exec.Command("ruby", "-c", "Vagrantfile").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Syntax OK") {
		t.Fatalf("ruby -c Vagrantfile: %v\n%s", err, out)
	}
}

func TestVagrantfileMatchesLab(t *testing.T) {
	src, err := os.ReadFile("Vagrantfile")
	if err != nil {
		t.Fatal(err)
	}
	// The same hosts and addresses as testinfra/lab and examples/two-region.
	for _, want := range []string{
		`"router"`, `"director"`, `"client"`, `"rs1"`, `"rs2"`,
		"198.18.48.254", "198.18.48.181", "198.18.48.100", "198.18.1.183", "198.18.10.182",
		"198.19.0.11", "198.19.0.21", "198.19.0.22",
	} {
		if !strings.Contains(string(src), want) {
			t.Errorf("Vagrantfile lacks %s", want)
		}
	}
}

func TestVagrantValidate(t *testing.T) {
	if _, err := exec.LookPath("vagrant"); err != nil {
		t.Fatal("vagrant is not installed: run testinfra/deps.sh (it installs Debian's vagrant)")
	}
	cmd := exec.Command("vagrant", "validate", "--ignore-provider")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("vagrant validate: %v\n%s", err, out)
	}
}

// TestScriptsSyntax checks the shell the lab and the Vagrant hosts run: the baseline scripts (POSIX
// sh) and the dependency installer (bash).
func TestScriptsSyntax(t *testing.T) {
	for _, c := range [][]string{
		{"sh", "-n", "scripts/director.sh"},
		{"sh", "-n", "scripts/realserver.sh"},
		{"bash", "-n", "deps.sh"},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Errorf("%v: %v\n%s", c, err, out)
		}
	}
}
