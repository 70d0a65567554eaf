package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tunplan/tunplan/testinfra/lab"
)

// TestSSHCutMidApply kills the director's sshd session while the helper is between two steps of an
// apply: the CLI reports the lost connection, the helper finishes on its own (the host ends fully
// new, or fully old had it failed), the lock is released, and the next diff reports the outcome.
func TestSSHCutMidApply(t *testing.T) {
	reset(t)
	mustTunplan(t, example, 0, "apply", "--auto-approve") // installs the helper everywhere
	changed := changedPlan(t)
	before := sh(t, "director", directorState)

	// Swap the director's helper for the fault-injection build, slowed to 2 s per step: tunplan
	// starts the installed helper it finds under the current helper's name.
	installed := strings.TrimSpace(sh(t, "director", "ls /var/lib/tunplan/bin/tunplan-helper-*"))
	wrapper := []byte("#!/bin/sh\nTUNPLAN_FAULT_DELAY=2s exec " + faultHelper(t) + " \"$@\"\n")
	slow := filepath.Join(lab.RunDir(), "slow-helper")
	if err := os.WriteFile(slow, wrapper, 0o700); err != nil {
		t.Fatal(err)
	}
	sh(t, "director", "cp "+slow+" "+installed)
	defer sh(t, "director", "rm -f "+installed) // the next run uploads the real helper again

	abs, _ := filepath.Abs(changed)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Getenv("TUNPLAN_BIN"), "apply", "-f", abs, "--auto-approve", "--hosts", "lvs01",
		"--var", "ssh_key="+lab.SSHKey(), "--var", "known_hosts="+lab.KnownHosts())
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("tunplan apply said:\n%s", out.String())
		}
	})
	// The apply holds the lock. The claiming diff before it holds the lock too, for well under a
	// second: the apply is the holder that stays (2 s per step). The holder is read from /proc/locks:
	// probing with flock would take the lock for a moment, and turn away the helper meanwhile.
	holder := func() string {
		o, err := lab.Sh("director", `i=$(stat -c %i /var/lib/tunplan/lock) && awk -v i=":$i" '$2 == "FLOCK" && substr($6, length($6) - length(i) + 1) == i {print $5}' /proc/locks`)
		if err != nil {
			return ""
		}
		return strings.TrimSpace(o)
	}
	pid := waitFor(t, 60*time.Second, "the apply to take the lock", func() string {
		p := holder()
		if p == "" {
			return ""
		}
		time.Sleep(1500 * time.Millisecond)
		if holder() != p {
			return ""
		}
		return p
	})
	time.Sleep(1500 * time.Millisecond) // inside the apply: the first step done, the second under way
	killed := killSSHSession(t, pid)
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(out.String(), "host lvs01: the connection was lost before the helper answered") {
		t.Fatalf("apply after the cut (killed sshd %v): exit %d (%v)\n%s", killed, code, err, out.String())
	}
	waitFor(t, 60*time.Second, "the helper to finish", func() string {
		if o, _ := lab.Exec(lab.Control, "pgrep", "-f", "tunplan-helper-faultinject"); strings.TrimSpace(o) == "" {
			return "gone"
		}
		return ""
	})
	if o, err := lab.Sh("director", "flock -n /var/lib/tunplan/lock true"); err != nil {
		t.Fatalf("the lock is still held after the helper ended: %v %s", err, o)
	}
	after := sh(t, "director", directorState)
	diff, code := tunplan(t, changed, "diff", "--hosts", "lvs01")
	switch {
	case code == 0: // fully new
		if !strings.Contains(diff, "! lvs01: the last apply") || !strings.Contains(diff, "lost its connection before reporting; outcome: applied, generation 2") {
			t.Errorf("diff does not report the finished apply:\n%s", diff)
		}
	case after == before: // fully old
		if !strings.Contains(diff, "lost its connection before reporting; outcome: restored") {
			t.Errorf("diff does not report the restored apply:\n%s", diff)
		}
	default:
		t.Fatalf("director is half-changed: diff exit %d\n%s\n--- before\n%s\n--- after\n%s", code, diff, before, after)
	}
	if after == before {
		t.Errorf("the helper did not finish the apply after the cut (state unchanged); diff:\n%s", diff)
	}
	// The outcome is told once: the diff above told it.
	sh(t, "director", "rm -f "+installed)
	mustTunplan(t, changed, 0, "apply", "--auto-approve", "--hosts", "lvs01")
	if d := mustTunplan(t, changed, 0, "diff", "--hosts", "lvs01"); strings.Contains(d, "the last apply") {
		t.Errorf("diff still reports the old outcome after another run:\n%s", d)
	}
}

// killSSHSession SIGKILLs the sshd processes of the session that runs pid (not the listener).
func killSSHSession(t *testing.T, pid string) []string {
	t.Helper()
	var chain []string
	for p := pid; p != "" && p != "1"; {
		stat, err := os.ReadFile("/proc/" + p + "/stat")
		if err != nil {
			t.Fatalf("process %s: %v", p, err)
		}
		// pid (comm) state ppid …
		comm := string(stat[bytes.IndexByte(stat, '(')+1 : bytes.LastIndexByte(stat, ')')])
		if comm == "sshd" {
			chain = append(chain, p)
		}
		p = strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))[1]
	}
	if len(chain) < 2 {
		t.Fatalf("no sshd session above the helper (pid %s): %v", pid, chain)
	}
	session := chain[:len(chain)-1] // the last is the listener
	if o, err := lab.Exec(lab.Control, append([]string{"kill", "-9"}, session...)...); err != nil {
		t.Fatalf("kill %v: %v %s", session, err, o)
	}
	return session
}

// waitFor polls f until it returns something, and returns that.
func waitFor(t *testing.T, limit time.Duration, what string, f func() string) string {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if v := f(); v != "" {
			return strings.Fields(v)[0]
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", limit, what)
	return ""
}

// TestLockTimeoutWaitsForTheHolder holds the director's lock for a few seconds: apply without
// --lock-timeout fails at once, with it waits and succeeds.
func TestLockTimeoutWaitsForTheHolder(t *testing.T) {
	reset(t)
	sh(t, "director", `mkdir -p -m 0700 /var/lib/tunplan; (flock -x /var/lib/tunplan/lock sleep 6 >/dev/null 2>&1 &); sleep 0.5`)
	mustTunplan(t, example, 1, "apply", "--auto-approve", "--hosts", "lvs01")
	start := time.Now()
	out := mustTunplan(t, example, 0, "apply", "--auto-approve", "--lock-timeout", "60s")
	if !strings.Contains(out, "Apply complete!") || time.Since(start) < 2*time.Second {
		t.Errorf("apply with --lock-timeout did not wait for the lock (%v):\n%s", time.Since(start), out)
	}
	mustTunplan(t, example, 0, "diff")
}

// TestRefusesToCutTheSession: plans whose VIP is the operator's own address, or whose service is the
// director's SSH endpoint, are refused before any host changes.
func TestRefusesToCutTheSession(t *testing.T) {
	reset(t)
	src, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, vip, port, want string }{
		{"VIP is the operator's address", lab.ControlMgmt, "80",
			fmt.Sprintf("the plan would put %s/32 on tunl0, which holds this session's client address %s", lab.ControlMgmt, lab.ControlMgmt)},
		// The plan check catches this one before any host is reached; the helper would refuse it too.
		{"service is the director's SSH endpoint", lab.DirectorMgmt, "22",
			fmt.Sprintf("VIP %s is the SSH address of host \"lvs01\"", lab.DirectorMgmt)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := strings.Replace(string(src), `default     = "`+lab.VIP+`"`, `default     = "`+c.vip+`"`, 1)
			s = strings.Replace(s, "port      = 80", "port      = "+c.port, 1)
			p := filepath.Join(t.TempDir(), "cut.hcl")
			if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
				t.Fatal(err)
			}
			out := mustTunplan(t, p, 1, "apply", "--auto-approve")
			if !strings.Contains(out, c.want) {
				t.Errorf("want %q in:\n%s", c.want, out)
			}
			for _, h := range []string{"director", "rs1", "rs2"} {
				if st := sh(t, h, "ls /var/lib/tunplan/generations 2>/dev/null; ipvsadm -Sn 2>/dev/null"); strings.TrimSpace(st) != "" {
					t.Errorf("%s was changed:\n%s", h, st)
				}
			}
		})
	}
}

// TestSudo logs in as a user without root: without a sudo rule the error says sudo wants a
// password; with a NOPASSWD rule the apply works through sudo -n.
func TestSudo(t *testing.T) {
	reset(t)
	// sudo looks up the host's name: the lab's names go in /etc/hosts, or each sudo waits for DNS.
	sh(t, lab.Control, `grep -q tunplan-lab /etc/hosts || echo '127.0.1.1 router director client rs1 rs2 # tunplan-lab' >> /etc/hosts
		id deploy >/dev/null 2>&1 || useradd -M -s /bin/sh deploy; usermod -p '*' deploy; rm -f /etc/sudoers.d/tunplan-deploy`)
	defer sh(t, lab.Control, "rm -f /etc/sudoers.d/tunplan-deploy")
	src, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(src), `user          = "root"`, "user          = \"deploy\"\n  sudo          = true", 1)
	p := filepath.Join(t.TempDir(), "sudo.hcl")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	out := mustTunplan(t, p, 1, "diff", "--hosts", "lvs01")
	if !strings.Contains(out, "Error: host lvs01: start helper: sudo needs a password for deploy; allow NOPASSWD for the helper or log in as root") {
		t.Errorf("no clear sudo error:\n%s", out)
	}
	sh(t, lab.Control, "echo 'deploy ALL=(root) NOPASSWD: ALL' > /etc/sudoers.d/tunplan-deploy && chmod 0440 /etc/sudoers.d/tunplan-deploy")
	mustTunplan(t, p, 0, "apply", "--auto-approve")
	mustTunplan(t, p, 0, "diff")
	if owner := sh(t, "director", "stat -c '%U %a' /var/lib/tunplan/bin"); strings.TrimSpace(owner) != "root 700" {
		t.Errorf("helper directory installed through sudo: %s", owner)
	}
	assertTunnelTraffic(t)
}

// TestBastion cuts the control machine's direct route to the director: a plain diff cannot reach
// it, and with `jump` through the router (ProxyJump) apply and diff work and traffic flows.
func TestBastion(t *testing.T) {
	reset(t)
	sh(t, lab.Control, "ip route add blackhole "+lab.DirectorMgmt+"/32")
	defer sh(t, lab.Control, "ip route del blackhole "+lab.DirectorMgmt+"/32")
	out := mustTunplan(t, example, 1, "diff", "--hosts", "lvs01")
	if !strings.Contains(out, "Error: host lvs01: connect "+lab.DirectorMgmt+":22:") {
		t.Fatalf("the director is still reachable without the bastion:\n%s", out)
	}
	p := planVariant(t, example, `user          = "root"`, "user          = \"root\"\n  jump          = \"root@"+lab.RouterMgmt+"\"")
	mustTunplan(t, p, 0, "apply", "--auto-approve")
	mustTunplan(t, p, 0, "diff")
	assertTunnelTraffic(t)
}

// TestClaimLastsWhileItsConnectionIsOpen: a run's claim on a host turns other runs away while the
// run's SSH connection is open (the helper asks the host's kernel, by sock_diag) and is free once it
// closes. An OpenSSH session stands in for the first run.
func TestClaimLastsWhileItsConnectionIsOpen(t *testing.T) {
	reset(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ssh := exec.CommandContext(ctx, "ssh", "-i", lab.SSHKey(), "-o", "UserKnownHostsFile="+lab.KnownHosts(),
		"-o", "BatchMode=yes", "root@"+lab.DirectorMgmt, `echo "$SSH_CONNECTION"; exec sleep 120`)
	stdout, err := ssh.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := ssh.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) != 4 {
		t.Fatalf("ssh printed %q: %v", line, err)
	}
	sh(t, "director", fmt.Sprintf(`mkdir -p -m 0700 /var/lib/tunplan && echo '{"connection":"%s","run_id":"0123abcd","actor":"alice@ops1","since":"2026-11-25T00:00:00Z"}' > /var/lib/tunplan/claim`, strings.Join(f, " ")))
	out := mustTunplan(t, example, 1, "apply", "--auto-approve")
	want := fmt.Sprintf("host lvs01: host is locked by another tunplan run (run 0123abcd since 2026-11-25T00:00:00Z by alice@ops1, connected from %s:%s)", f[0], f[1])
	if !strings.Contains(out, want) {
		t.Errorf("apply output lacks %q:\n%s", want, out)
	}
	if ipvs := sh(t, "director", "ipvsadm -Sn"); strings.TrimSpace(ipvs) != "" {
		t.Errorf("claimed director was changed:\n%s", ipvs)
	}
	cancel()
	_ = ssh.Wait()
	mustTunplan(t, example, 0, "apply", "--auto-approve")
	mustTunplan(t, example, 0, "diff")
}
