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

// box is the box build-box.sh builds and adds.
const box = "tunplan/bookworm"

// example is what tunplan applies (relative to the repo), with its checks slowed for five full VMs
// under TCG on two cores: a check every 3 s, 2 s to answer (vagrantPlan).
const example = "examples/health-check/tunplan.hcl"

// mgmt is each host's address on the lab's management network (the Vagrantfile's, the qemu lab's).
var mgmt = map[string]string{
	"router": lab.RouterMgmt, "director": lab.DirectorMgmt, "client": lab.ClientMgmt,
	"rs1": lab.RS1Mgmt, "rs2": lab.RS2Mgmt,
}

// rebooted are the hosts TestVagrantLab reboots (`vagrant reload`), in order.
var rebooted = []string{"rs2", "director"}

// TestVagrantLab boots testinfra/Vagrantfile with vagrant-libvirt under qemu's TCG (the box built
// by build-box.sh; libvirtd in a network namespace of its own), applies examples/health-check
// (two-region with an HTTP check) with tunplan from the machine over the management network,
// checks LVS-TUN with real traffic, reboots a realserver and the director with `vagrant reload` and
// checks, with no tunplan command in between, that both realservers answer again, `tunplan diff`
// finds nothing, and systemd runs the director's watcher, which holds rs2 at weight 0 while its
// nginx is stopped. It fails (never skips) when the machine lacks what it needs.
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
	l.checkWatcher()
}

// checkWatcher fails the test unless systemd runs the director's watcher after its reboot
// (tunplan-watch.service, enabled by apply) and the watcher holds rs2 at weight 0 once its nginx
// stops, within fall × interval + timeout (and the VMs' slowness), then gives it back once nginx
// runs again; diff exits 0 meanwhile (held, not drift).
func (l *vagrantLab) checkWatcher() {
	out, err := l.ssh("director", "systemctl is-active tunplan-watch.service; systemctl is-enabled tunplan-watch.service")
	if err != nil || !strings.HasPrefix(out, "active\n") || !strings.Contains(out, "\nenabled") {
		l.t.Fatalf("tunplan-watch.service after the director's reboot: %v\n%s", err, out)
	}
	if _, err := l.ssh("rs2", "systemctl stop nginx"); err != nil {
		l.t.Fatal(err)
	}
	stopped := time.Now()
	held := l.waitWeight(lab.RS2IP, "0", time.Minute)
	l.t.Logf("rs2's nginx stopped: weight 0 after %v (bound: fall 2 × interval 3s + timeout 2s = 8s)", held.Sub(stopped).Round(100*time.Millisecond))
	l.tunplan(0, "diff")
	if _, err := l.ssh("rs2", "systemctl start nginx"); err != nil {
		l.t.Fatal(err)
	}
	l.waitWeight(lab.RS2IP, "1", time.Minute)
}

// waitWeight polls rip's weight in the director's VIP service until it is w, and returns when it
// saw it.
func (l *vagrantLab) waitWeight(rip, w string, limit time.Duration) time.Time {
	l.t.Helper()
	line := "-a -t " + lab.VIP + ":80 -r " + rip + ":80 -i -w " + w
	var out string
	for end := time.Now().Add(limit); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		var err error
		// The box's ipvsadm (1.31) ends the line with --tun-type ipip.
		if out, err = l.ssh("director", "ipvsadm -Sn"); err == nil && (strings.Contains(out, line+"\n") || strings.Contains(out, line+" ")) {
			return time.Now()
		}
	}
	l.t.Fatalf("no %q on the director within %v:\n%s", line, limit, out)
	return time.Time{}
}

// vagrantPlan writes example with its checks slowed (see example) and returns its path.
func (l *vagrantLab) vagrantPlan() string {
	src, err := os.ReadFile(filepath.Join(l.repo, example))
	if err != nil {
		l.t.Fatal(err)
	}
	s := strings.NewReplacer(`interval = "1s"`, `interval = "3s"`, `timeout  = "500ms"`, `timeout  = "2s"`).Replace(string(src))
	if !strings.Contains(s, `interval = "3s"`) || !strings.Contains(s, `timeout  = "2s"`) {
		l.t.Fatalf("%s has no interval of 1s and timeout of 500ms to slow", example)
	}
	p := filepath.Join(l.dir, "tunplan.hcl")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		l.t.Fatal(err)
	}
	return p
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
	plan    string // what tunplan applies (vagrantPlan)
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
	l.plan = l.vagrantPlan()
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

// tunplan runs a tunplan command on the lab's plan (vagrantPlan) from the machine (in the lab's
// network namespace) and fails the test unless it exits with want.
func (l *vagrantLab) tunplan(want int, args ...string) {
	l.t.Helper()
	args = append(args, "-f", l.plan, "--var", "ssh_key="+l.key, "--var", "known_hosts="+l.known)
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
