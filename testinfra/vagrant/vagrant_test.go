// Package vagrant tests the Vagrant lab (testinfra/Vagrantfile). The quick tests check the
// Vagrantfile's syntax, hosts and addresses, `vagrant validate`, and the shell the labs run;
// TestVagrantLab (lab_test.go) really boots it with vagrant-libvirt and proves tunplan on it,
// through a reboot.
package vagrant

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// testinfra is the directory of the Vagrantfile, relative to this package.
const testinfra = ".."

func TestVagrantfileSyntax(t *testing.T) {
	out, err := exec.Command("ruby", "-c", testinfra+"/Vagrantfile").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Syntax OK") {
		t.Fatalf("ruby -c Vagrantfile: %v\n%s", err, out)
	}
}

func TestVagrantfileMatchesLab(t *testing.T) {
	src, err := os.ReadFile(testinfra + "/Vagrantfile")
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
	cmd.Dir = testinfra
	cmd.Env = append(os.Environ(), "VAGRANT_CHECKPOINT_DISABLE=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("vagrant validate: %v\n%s", err, out)
	}
}

// TestScriptsSyntax checks the shell the lab and the Vagrant hosts run: the baseline scripts (POSIX
// sh), the dependency installer and the box builder (bash).
func TestScriptsSyntax(t *testing.T) {
	for _, c := range [][]string{
		{"sh", "-n", testinfra + "/scripts/director.sh"},
		{"sh", "-n", testinfra + "/scripts/realserver.sh"},
		{"bash", "-n", testinfra + "/deps.sh"},
		{"bash", "-n", "build-box.sh"},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Errorf("%v: %v\n%s", c, err, out)
		}
	}
}
