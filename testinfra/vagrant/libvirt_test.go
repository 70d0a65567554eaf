package vagrant

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// netns is the network namespace the test makes for libvirtd, its bridges and dnsmasq, the VMs'
// qemu processes, vagrant and tunplan: nothing of the lab touches the machine's own interfaces.
const netns = "tunplan-vagrant"

// qemuConf replaces /etc/libvirt/qemu.conf for the test's libvirtd only (bind-mounted in its own
// mount namespace). qemu runs as root: where /dev/kvm exists but the qemu user cannot open it,
// libvirt (9.0) otherwise finds its capability cache stale at every call ("KVM was enabled when
// probing, but it is not available now") and probes qemu again, about 4 s each time.
const qemuConf = "user = \"+0\"\ngroup = \"+0\"\n"

// Leftovers of an earlier run that was killed before its cleanup: the Vagrantfile's domains
// (directory testinfra: prefix testinfra_) and networks.
var (
	staleDomain  = regexp.MustCompile(`^testinfra_`)
	staleNetwork = regexp.MustCompile(`^(tunplan-(mgmt|lan|region1|region2)|vagrant-libvirt)$`)
)

// inNetns is a command run in the test's network namespace.
func inNetns(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", netns, name}, args...)...)
}

// startLibvirt makes the network namespace and starts virtlogd and libvirtd in it; the cleanup
// stops them and deletes the namespace.
func (l *vagrantLab) startLibvirt() {
	if err := stopNetns(); err != nil {
		l.t.Fatalf("removing an earlier run's namespace: %v", err)
	}
	l.run(exec.Command("ip", "netns", "add", netns))
	l.t.Cleanup(func() {
		if err := stopNetns(); err != nil {
			l.t.Errorf("stopping libvirtd and deleting netns %s: %v", netns, err)
		}
	})
	conf := filepath.Join(l.dir, "qemu.conf")
	if err := os.WriteFile(conf, []byte(qemuConf), 0o644); err != nil {
		l.t.Fatal(err)
	}
	l.run(exec.Command("ip", "-n", netns, "link", "set", "lo", "up"))
	l.run(inNetns("virtlogd", "-d"))
	l.run(inNetns("sh", "-c", `mount --bind "$1" /etc/libvirt/qemu.conf && exec libvirtd -d`, "sh", conf))
	l.waitLibvirt()
	l.removeStale()
}

// waitLibvirt waits until the test's libvirtd answers, and checks it is the one in the namespace
// (not a libvirtd the machine already runs).
func (l *vagrantLab) waitLibvirt() {
	for i := 0; ; i++ {
		if inNetns("virsh", "-q", "version").Run() == nil {
			break
		}
		if i == 60 {
			l.t.Fatal("libvirtd did not answer within 30 s")
		}
		time.Sleep(500 * time.Millisecond)
	}
	pid, _ := os.ReadFile("/run/libvirtd.pid")
	pids, err := netnsPids()
	if err != nil || !pids[strings.TrimSpace(string(pid))] {
		l.t.Fatalf("the libvirtd answering (pid %s) is not the test's, in netns %s (%v): stop the machine's libvirtd",
			strings.TrimSpace(string(pid)), netns, err)
	}
}

// removeStale removes the domains (with their volumes) and networks an earlier, killed run left.
func (l *vagrantLab) removeStale() {
	for _, d := range virshNames("list", "--all", "--name") {
		if staleDomain.MatchString(d) {
			l.t.Logf("removing domain %s of an earlier run", d)
			inNetns("virsh", "destroy", d).Run()
			l.run(inNetns("virsh", "undefine", d, "--remove-all-storage"))
		}
	}
	for _, n := range virshNames("net-list", "--all", "--name") {
		if staleNetwork.MatchString(n) {
			l.t.Logf("removing network %s of an earlier run", n)
			inNetns("virsh", "net-destroy", n).Run()
			l.run(inNetns("virsh", "net-undefine", n))
		}
	}
	for _, v := range virshNames("vol-list", "default") {
		if f := strings.Fields(v); len(f) == 2 && staleDomain.MatchString(f[0]) {
			l.run(inNetns("virsh", "vol-delete", f[0], "default"))
		}
	}
}

// virshNames is the output of a virsh listing, one name (line) each; nothing when it fails (the
// pool does not exist before the first vagrant up).
func virshNames(args ...string) []string {
	out, err := inNetns("virsh", append([]string{"-q"}, args...)...).Output()
	if err != nil {
		return nil
	}
	var names []string
	for _, s := range strings.Split(string(out), "\n") {
		if s = strings.TrimSpace(s); s != "" {
			names = append(names, s)
		}
	}
	return names
}

// netnsPids is the set of processes in the test's network namespace.
func netnsPids() (map[string]bool, error) {
	out, err := exec.Command("ip", "netns", "pids", netns).Output()
	pids := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		pids[p] = true
	}
	return pids, err
}

// stopNetns ends every process in the test's namespace (all started by the test: libvirtd,
// virtlogd, dnsmasq, qemu), SIGTERM then SIGKILL after 15 s, and deletes the namespace.
func stopNetns() error {
	if _, err := os.Stat(filepath.Join("/run/netns", netns)); err != nil {
		return nil
	}
	for sig, deadline := syscall.SIGTERM, time.Now().Add(15*time.Second); ; {
		pids, err := netnsPids()
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			sig = syscall.SIGKILL
		}
		for p := range pids {
			if n, err := strconv.Atoi(p); err == nil {
				syscall.Kill(n, sig)
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	if out, err := exec.Command("ip", "netns", "del", netns).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns del: %v: %s", err, out)
	}
	return nil
}

// vagrantEnv is the environment of every vagrant command: the test's box, key, console logs and
// state directory; no network calls (no checkpoint or box update checks, the machine has none).
func (l *vagrantLab) vagrantEnv() []string {
	return append(os.Environ(),
		"TUNPLAN_BOX="+box,
		"TUNPLAN_LIBVIRT_DRIVER=qemu",
		"TUNPLAN_PUBKEY="+l.key+".pub",
		"TUNPLAN_CONSOLE_DIR="+filepath.Join(l.dir, "console"),
		"VAGRANT_DOTFILE_PATH="+filepath.Join(l.dir, "vagrant"),
		"VAGRANT_DEFAULT_PROVIDER=libvirt",
		"VAGRANT_CHECKPOINT_DISABLE=1",
		"VAGRANT_BOX_UPDATE_CHECK_DISABLE=1",
	)
}

// vagrant runs a vagrant command on the Vagrantfile in the namespace, logging its output, and
// fails the test if it fails.
func (l *vagrantLab) vagrant(args ...string) {
	l.t.Helper()
	cmd := inNetns("vagrant", append(args, "--no-color")...)
	cmd.Dir, cmd.Env = filepath.Join(l.repo, "testinfra"), l.vagrantEnv()
	out, err := cmd.CombinedOutput()
	l.t.Logf("vagrant %s:\n%s", strings.Join(args, " "), vagrantLog(out))
	if err != nil {
		l.t.Fatalf("vagrant %s: %v", strings.Join(args, " "), err)
	}
}

// up boots every host (vagrant-libvirt boots them in parallel); `vagrant destroy -f` at the end of
// the test, passed or not, and the VMs' serial consoles in the log if it failed.
func (l *vagrantLab) up() {
	l.t.Cleanup(func() {
		if l.t.Failed() {
			l.logConsoles()
		}
		l.vagrant("destroy", "-f")
	})
	l.vagrant("up", "--provider=libvirt")
}

// logConsoles logs the end of each VM's serial console.
func (l *vagrantLab) logConsoles() {
	logs, _ := filepath.Glob(filepath.Join(l.dir, "console", "*.log"))
	for _, f := range logs {
		b, _ := os.ReadFile(f)
		lines := strings.Split(string(b), "\n")
		l.t.Logf("serial console %s (end):\n%s", filepath.Base(f), strings.Join(lines[max(0, len(lines)-40):], "\n"))
	}
}

// vagrantLog is vagrant's output without the box upload's progress lines and terminal escapes.
func vagrantLog(out []byte) string {
	var b strings.Builder
	text := strings.ReplaceAll(string(out), "\x1b[K", "\n")
	for _, s := range strings.FieldsFunc(text, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if strings.TrimSpace(s) != "" && !strings.HasPrefix(s, "Progress:") {
			b.WriteString(s + "\n")
		}
	}
	return b.String()
}
