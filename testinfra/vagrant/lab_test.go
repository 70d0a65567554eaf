package vagrant

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tunplan/tunplan/testinfra/lab"
)

// box is the box build-box.sh builds and adds; plan is what tunplan applies (relative to the repo).
const (
	box  = "tunplan/bookworm"
	plan = "examples/two-region/tunplan.hcl"
)

// mgmt is each host's address on the lab's management network (the Vagrantfile's, the qemu lab's).
var mgmt = map[string]string{
	"router": lab.RouterMgmt, "director": lab.DirectorMgmt, "client": lab.ClientMgmt,
	"rs1": lab.RS1Mgmt, "rs2": lab.RS2Mgmt,
}

// rebooted are the hosts TestVagrantLab reboots (`vagrant reload`), in order.
var rebooted = []string{"rs2", "director"}

// TestVagrantLab boots testinfra/Vagrantfile with vagrant-libvirt under qemu's TCG (the box built
// by build-box.sh; libvirtd in a network namespace of its own), applies examples/two-region with
// tunplan from the machine over the management network, checks LVS-TUN with real traffic, reboots
// a realserver and the director with `vagrant reload` and checks, with no tunplan command in
// between, that both realservers answer again and `tunplan diff` finds nothing. It fails (never
// skips) when the machine lacks what it needs.
func TestVagrantLab(t *testing.T) {
	requireTools(t)
	l := newVagrantLab(t)
	l.timed("box", l.buildBox)
	l.timed("tunplan build", l.buildTunplan)
	l.startLibvirt()
	l.timed("vagrant up", l.up)
	l.writeKnownHosts()
	l.timed("tunplan apply", func() { l.tunplan(0, "apply", "--auto-approve") })
	l.checkTraffic("after apply", 0)

	boots := l.bootIDs(rebooted)
	for _, h := range rebooted {
		l.timed("reload "+h, func() { l.vagrant("reload", h) })
	}
	for h, id := range l.bootIDs(rebooted) {
		if id == boots[h] {
			t.Fatalf("%s has the same boot id after vagrant reload: it did not reboot", h)
		}
		l.checkRestored(h)
	}
	// No tunplan command since the apply: only the hosts' boot (tunplan-restore.service,
	// modules-load.d, sysctl.d) brought the tunnel and IPVS back.
	l.checkTraffic("after rebooting "+strings.Join(rebooted, " and "), 2*time.Minute)
	l.tunplan(0, "diff")
}

// checkRestored fails the test unless the host's boot ran tunplan's restore unit successfully,
// and logs how long the boot took.
func (l *vagrantLab) checkRestored(host string) {
	out, err := l.ssh(host, "systemctl show -p ActiveState -p Result tunplan-restore.service; systemd-analyze time || true")
	if err != nil || !strings.Contains(out, "ActiveState=active") || !strings.Contains(out, "Result=success") {
		l.t.Fatalf("%s: tunplan-restore.service did not run at boot: %v\n%s", host, err, out)
	}
	l.t.Logf("%s after reboot:\n%s", host, out)
}

// requireTools fails the test when the machine cannot run the lab: testinfra/deps.sh installs it all.
func requireTools(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the Vagrant lab needs root (network namespace, libvirtd, debootstrap)")
	}
	for _, c := range []string{"vagrant", "libvirtd", "virtlogd", "virsh", "ip", "ssh", "ssh-keygen", "ssh-keyscan",
		"debootstrap", "qemu-img", "mkfs.ext4", "qemu-system-x86_64", "make", "go"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Fatalf("%s is not installed or not on PATH: run testinfra/deps.sh (make deps)", c)
		}
	}
	out, err := exec.Command("vagrant", "plugin", "list").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "vagrant-libvirt") {
		t.Fatalf("vagrant has no vagrant-libvirt plugin (Debian's vagrant-libvirt package): %v\n%s", err, out)
	}
}

// vagrantLab is one run of the Vagrant lab: its directory holds tunplan, its SSH key and
// known_hosts, the VMs' serial consoles, vagrant's state and libvirtd's qemu.conf.
type vagrantLab struct {
	t       *testing.T
	dir     string
	repo    string // the repository's root
	bin     string // tunplan, with its helpers embedded
	key     string // tunplan's private key; the Vagrantfile authorises key.pub for root
	known   string // known_hosts with the hosts' real host keys
	timings []string
}

func newVagrantLab(t *testing.T) *vagrantLab {
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	l := &vagrantLab{t: t, dir: t.TempDir(), repo: repo}
	l.key = filepath.Join(l.dir, "id_ed25519")
	l.known = filepath.Join(l.dir, "known_hosts")
	if err := os.Mkdir(filepath.Join(l.dir, "console"), 0o755); err != nil {
		t.Fatal(err)
	}
	l.run(exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tunplan-vagrant-test", "-f", l.key))
	start := time.Now()
	t.Cleanup(func() {
		l.timings = append(l.timings, "total "+time.Since(start).Round(time.Second).String())
		t.Logf("timings: %s", strings.Join(l.timings, ", "))
	})
	return l
}

// timed runs f and records how long it took under name.
func (l *vagrantLab) timed(name string, f func()) {
	start := time.Now()
	f()
	d := name + " " + time.Since(start).Round(time.Second).String()
	l.timings = append(l.timings, d)
	l.t.Logf("timing: %s", d)
}

// run runs cmd, logging its output, and fails the test if it fails.
func (l *vagrantLab) run(cmd *exec.Cmd) string {
	l.t.Helper()
	out, err := cmd.CombinedOutput()
	if err != nil {
		l.t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
	}
	return string(out)
}

// buildBox builds tunplan/bookworm, or reuses the cached one, and adds it to vagrant.
func (l *vagrantLab) buildBox() {
	out := l.run(exec.Command("bash", "build-box.sh"))
	l.t.Logf("%s", strings.TrimSpace(out))
}

// buildTunplan builds tunplan with its helpers embedded (`make helper`, then go build).
func (l *vagrantLab) buildTunplan() {
	l.bin = filepath.Join(l.dir, "tunplan")
	for _, args := range [][]string{
		{"make", "-s", "-C", l.repo, "helper"},
		{"go", "build", "-o", l.bin, "./cmd/tunplan"},
	} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = l.repo
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		l.run(cmd)
	}
}

// tunplan runs a tunplan command on examples/two-region from the machine (in the lab's network
// namespace) and fails the test unless it exits with want.
func (l *vagrantLab) tunplan(want int, args ...string) {
	l.t.Helper()
	args = append(args, "-f", plan, "--var", "ssh_key="+l.key, "--var", "known_hosts="+l.known)
	cmd := inNetns(l.bin, args...)
	cmd.Dir = l.repo
	out, err := cmd.CombinedOutput()
	l.t.Logf("tunplan %s:\n%s", args[0], out)
	if cmd.ProcessState == nil {
		l.t.Fatalf("tunplan %s: %v", args[0], err)
	}
	if code := cmd.ProcessState.ExitCode(); code != want {
		l.t.Fatalf("tunplan %s: exit %d (%v), want %d", args[0], code, err, want)
	}
}
