// Package lab boots a real Linux kernel (Debian's, under qemu) and builds inside it the classic
// LVS-TUN topology — router, director, client and two realservers in two regions, each in its own
// namespaces with a real sshd — so tests can prove what tunplan does to a kernel with real traffic.
//
// A test binary calls Main from TestMain: outside the VM it boots a VM that runs the same binary
// inside; inside it builds the topology once, runs the tests, and tears down.
package lab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const insideEnv = "TUNPLAN_LAB_INSIDE"

// Inside reports whether this process runs inside the lab VM.
func Inside() bool { return os.Getenv(insideEnv) == "1" }

// Main is for TestMain.
func Main(m *testing.M) {
	if !Inside() {
		code, err := Run(os.Args)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
		os.Exit(code)
	}
	if err := build(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	teardown()
	os.Exit(code)
}

// Run boots a VM and runs argv in it (in the current directory, with TUNPLAN_* variables passed
// through and TUNPLAN_LAB_INSIDE=1); argv itself is expected to call Main or Start. It returns argv's
// exit code.
func Run(argv []string) (int, error) {
	vm, err := NewVM()
	if err != nil {
		return -1, err
	}
	defer vm.Cleanup()
	wd, err := os.Getwd()
	if err != nil {
		return -1, err
	}
	exe, err := filepath.Abs(argv[0])
	if err != nil {
		return -1, err
	}
	var b strings.Builder
	b.WriteString("export PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root " + insideEnv + "=1\n")
	env := os.Environ()
	sort.Strings(env)
	for _, kv := range env {
		if strings.HasPrefix(kv, "TUNPLAN_") || strings.HasPrefix(kv, "GOCOVERDIR=") {
			k, v, _ := strings.Cut(kv, "=")
			fmt.Fprintf(&b, "export %s=%s\n", k, strconv.Quote(v))
		}
	}
	fmt.Fprintf(&b, "cd %s\nexec %s", strconv.Quote(wd), strconv.Quote(exe))
	for _, a := range argv[1:] {
		b.WriteString(" " + strconv.Quote(a))
	}
	b.WriteString("\n")
	return vm.Run(b.String())
}

// Start builds the topology inside the VM, for programs that are not tests.
func Start() error { return build() }

func teardown() {
	for _, pid := range pids {
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
	}
}

// Exec runs argv in the named host's namespaces (network, mount, UTS) and returns its combined
// output. Host "control" is the VM's own namespace, where tunplan runs.
func Exec(host string, argv ...string) (string, error) {
	if host != "control" {
		pid, ok := pids[host]
		if !ok {
			return "", fmt.Errorf("lab: no host %q", host)
		}
		argv = append([]string{"nsenter", "-t", strconv.Itoa(pid), "-n", "-m", "-u", "--"}, argv...)
	}
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	return string(out), err
}

// Sh runs a shell script in the named host.
func Sh(host, script string) (string, error) { return Exec(host, "bash", "-c", script) }

// SSHKey is the private key that every host's root accepts.
func SSHKey() string { return filepath.Join(stateDir, "id_ed25519") }

// KnownHosts is a known_hosts file with every host's management address and key.
func KnownHosts() string { return filepath.Join(stateDir, "known_hosts") }

// Reset returns every host to its state right after boot: no IPVS rules, no tunnel addresses, the
// lab's sysctls, no tunplan state. Unloading ipip and IPVS removes tunl0 and the IPVS tables in every
// namespace, so the next test starts from a kernel that has never seen them.
func Reset() error {
	for _, h := range []string{"director", "client", "rs1", "rs2"} {
		script := `command -v ipvsadm >/dev/null && [ -d /proc/net/ip_vs ] 2>/dev/null; ipvsadm -C 2>/dev/null
			rm -rf /var/lib/tunplan /etc/sysctl.d/99-tunplan.conf
			echo 0 > /proc/sys/net/ipv4/ip_forward
			for k in all default eth0; do echo 1 > /proc/sys/net/ipv4/conf/$k/rp_filter; done
			for k in all default eth0; do echo 0 > /proc/sys/net/ipv4/conf/$k/arp_ignore; echo 0 > /proc/sys/net/ipv4/conf/$k/arp_announce; done`
		if err := sh(h, script); err != nil {
			return err
		}
	}
	return sh("control", `for m in ip_vs_rr ip_vs_wrr ip_vs_wlc ip_vs_lc ip_vs_sh ip_vs_dh ip_vs_sed ip_vs_nq ip_vs_lblc ip_vs_lblcr ip_vs_mh ip_vs_fo ip_vs_ovf ip_vs ipip tunnel4 ip_tunnel; do
			if [ -d /sys/module/$m ]; then rmmod $m || exit 1; fi; done`)
}
