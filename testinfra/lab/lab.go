// Package lab boots a real Linux kernel (Debian's, under qemu) and builds inside it the classic
// LVS-TUN topology — router, director, client and two realservers in two regions, each in its own
// namespaces with a real sshd — so tests can prove what tunplan does to a kernel with real traffic.
//
// A test binary calls Main from TestMain: outside the VM it boots a VM that runs the same binary
// inside; inside it builds the topology once, runs the tests, and tears down.
package lab

import (
	"errors"
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

// runDir is where the VM mounts the run's directory, shared writable with the machine that booted it.
const runDir = "/labrun"

// Inside reports whether this process runs inside the lab VM.
func Inside() bool { return os.Getenv(insideEnv) == "1" }

// Main is for TestMain. Outside the VM it boots one that runs this test binary with the same
// arguments and exits with its status; inside it builds the topology, runs the tests and tears down.
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
	if err := teardown(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// Run boots a VM and runs argv in it, in the current directory, with every TUNPLAN_* variable passed
// through and TUNPLAN_LAB_INSIDE=1; argv is expected to call Main or Start. It returns argv's exit
// code.
func Run(argv []string) (int, error) { return RunCollect(argv, nil) }

// RunCollect is Run, then collect(dir) with the run's directory (the VM's /labrun) before it is
// removed, whether or not the run succeeded: how a program inside the VM hands files back to the
// machine that booted it.
func RunCollect(argv []string, collect func(dir string) error) (int, error) {
	if len(argv) == 0 {
		return -1, errors.New("lab: nothing to run")
	}
	wd, err := os.Getwd()
	if err != nil {
		return -1, fmt.Errorf("lab: %w", err)
	}
	exe, err := filepath.Abs(argv[0])
	if err != nil {
		return -1, fmt.Errorf("lab: %w", err)
	}
	vm, err := NewVM()
	if err != nil {
		return -1, err
	}
	defer vm.Cleanup()
	if err := prepareKeys(vm.Dir); err != nil {
		return -1, err
	}
	var b strings.Builder
	b.WriteString("export PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root " + insideEnv + "=1\n")
	env := os.Environ()
	sort.Strings(env)
	for _, kv := range env {
		if strings.HasPrefix(kv, "TUNPLAN_") || strings.HasPrefix(kv, "GOCOVERDIR=") {
			k, v, _ := strings.Cut(kv, "=")
			fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(v))
		}
	}
	fmt.Fprintf(&b, "cd %s\nexec %s", shellQuote(wd), shellQuote(exe))
	for _, a := range argv[1:] {
		b.WriteString(" " + shellQuote(a))
	}
	b.WriteString("\n")
	code, err := vm.Run(b.String())
	if collect != nil { // also after a failed or timed-out run: what it wrote so far
		if cerr := collect(vm.Dir); err == nil {
			err = cerr
		}
	}
	return code, err
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// Start builds the topology inside the VM, for programs that are not tests; Stop tears it down.
func Start() error { return build() }

// Stop stops every host's processes and removes the topology.
func Stop() error { return teardown() }

// Exec runs argv in the named host's namespaces (network, mount, UTS), in the current directory, and
// returns its combined output. Host Control ("control") is the VM's own namespace, where tunplan runs.
func Exec(host string, argv ...string) (string, error) {
	if len(argv) == 0 {
		return "", errors.New("lab: Exec: no command")
	}
	if host != Control {
		cmd, ok := procs[host]
		if !ok {
			return "", fmt.Errorf("lab: no host %q", host)
		}
		wd, err := os.Getwd()
		if err != nil {
			return "", fmt.Errorf("lab: %w", err)
		}
		// busybox's nsenter is static, so cheap to start under emulation, but it would run its own
		// applet for a bare name (sh, ip…): resolve the program here.
		prog, err := exec.LookPath(argv[0])
		if err != nil {
			return "", fmt.Errorf("lab: %s: %w", host, err)
		}
		ns := []string{"/bin/busybox", "nsenter", "-t", strconv.Itoa(cmd.Process.Pid), "-n", "-m", "-u", "-F", "-w" + wd, "--", prog}
		argv = append(ns, argv[1:]...)
	}
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	return string(out), err
}

// Sh runs a shell script (sh -c) in the named host.
func Sh(host, script string) (string, error) { return Exec(host, "sh", "-c", script) }

// RunDir is the run's directory inside the VM, shared with the machine that booted it: the SSH key,
// known_hosts, captures; kept after the run with TUNPLAN_LAB_KEEP=1.
func RunDir() string { return runDir }

// SSHKey is the private key (ed25519, no passphrase) that every host's root accepts.
func SSHKey() string { return filepath.Join(runDir, "id_ed25519") }

// KnownHosts is a known_hosts file with every host's management address and host key.
func KnownHosts() string { return filepath.Join(runDir, "known_hosts") }

// Reset returns every host to its state right after boot: no IPVS rules, tunl0 (and gre0) without
// addresses and down, the lab's sysctls, no tunplan state. It then unloads ipip, ip_gre, fou and
// IPVS, so the next test starts from a kernel that has never seen them (tunl0, gre0, the fou
// listeners and the IPVS tables go away in every namespace).
func Reset() error {
	err := parallel(func(h Host) error {
		return bsh(h.Name, forgetKernel(h)+`
			pkill -f '^[^ ]*tunplan-helper[^ ]* watch$' || true # anchored: not this script's own command line
			rm -rf /var/lib/tunplan /etc/sysctl.d/* /etc/systemd/system/* /etc/modules-load.d/*`)
	})
	if err != nil {
		return err
	}
	return unloadModules()
}

// unloadModules unloads ipip, GRE, fou, ip6_tunnel, IPVS and nf_tables (with the nft modules that
// hold it) from the VM's kernel, which every host shares; a module still in use stays (as one a
// host that did not reboot uses would).
func unloadModules() error {
	return bsh(Control, `for m in ip_vs_rr ip_vs_wrr ip_vs_wlc ip_vs_lc ip_vs_sh ip_vs_dh ip_vs_sed ip_vs_nq ip_vs_lblc ip_vs_lblcr ip_vs_mh ip_vs_fo ip_vs_ovf ip_vs ipip ip_gre gre fou tunnel4 ip_tunnel ip6_tunnel tunnel6; do
			if [ -d /sys/module/$m ]; then rmmod $m; fi; done
		if [ -d /sys/module/nf_tables ]; then
			for m in $(ls /sys/module/nf_tables/holders); do rmmod $m; done
			rmmod nf_tables
		fi
		true`)
}

// bsh runs a setup script in a host with busybox sh, whose applets (mount, mkdir, sleep…) run
// without an exec; other programs need their full path. It fails with the script's output.
func bsh(host, script string) error {
	return check(host, script)(Exec(host, "/bin/busybox", "sh", "-c", script))
}

func check(host, script string) func(string, error) error {
	return func(out string, err error) error {
		if err != nil {
			return fmt.Errorf("lab: %s: %w\n%s\n%s", host, err, script, out)
		}
		return nil
	}
}
