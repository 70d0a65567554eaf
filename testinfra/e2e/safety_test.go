package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tunplan/tunplan/testinfra/lab"
)

// TestHeldLockFailsFastAndNamesHolder holds the director's lock as another run would and checks
// that apply fails at once, names the holder, and changes nothing; then it succeeds once released.
func TestHeldLockFailsFastAndNamesHolder(t *testing.T) {
	reset(t)
	sh(t, "director", `mkdir -p -m 0700 /var/lib/tunplan && echo "pid 4242 since 2026-11-25T00:00:00Z by alice@ops1" > /var/lib/tunplan/lock
		(flock -o -x /var/lib/tunplan/lock sleep 60 >/dev/null 2>&1 &) ; sleep 0.5`)
	out := mustTunplan(t, example, 1, "apply", "--auto-approve")
	if !strings.Contains(out, "host lvs01: host is locked by another tunplan run (pid 4242 since 2026-11-25T00:00:00Z by alice@ops1)") {
		t.Errorf("apply output does not name the lock holder:\n%s", out)
	}
	if ipvs := sh(t, "director", "ipvsadm -Sn"); strings.TrimSpace(ipvs) != "" {
		t.Errorf("locked director was changed:\n%s", ipvs)
	}
	sh(t, "director", "pkill -x flock; sleep 0.2")
	mustTunplan(t, example, 0, "apply", "--auto-approve")
	mustTunplan(t, example, 0, "diff")
}

// TestConcurrentApplies starts two applies of the same plan at once: one runs, the other is turned
// away by the lock (or the first run's claim) before it changes anything, and the hosts end exactly
// as the plan says.
func TestConcurrentApplies(t *testing.T) {
	reset(t)
	var wg sync.WaitGroup
	outs, codes := make([]string, 2), make([]int, 2)
	for i := range outs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			outs[i], codes[i] = tunplan(t, example, "apply", "--auto-approve")
		}(i)
	}
	wg.Wait()
	if codes[0]+codes[1] != 1 {
		t.Fatalf("want one apply to succeed and one to exit 1; exits %v:\n%s\n%s", codes, outs[0], outs[1])
	}
	lost := outs[0]
	if codes[1] == 1 {
		lost = outs[1]
	}
	if !strings.Contains(lost, "locked by another tunplan run") || strings.Contains(lost, "applied") {
		t.Errorf("the apply that lost did not report the lock, or changed a host:\n%s", lost)
	}
	mustTunplan(t, example, 0, "diff")
	assertTunnelTraffic(t)
}

// TestConnectionProblemsAreOneClearLine checks each way of not reaching a host: exit 1 and one
// error line that names the host and says what is wrong.
func TestConnectionProblemsAreOneClearLine(t *testing.T) {
	reset(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	known, err := os.ReadFile(lab.KnownHosts())
	if err != nil {
		t.Fatal(err)
	}
	// Another host's key under the director's address: what a changed key looks like.
	var changed []string
	var rs1Key string
	for _, l := range strings.Split(string(known), "\n") {
		if strings.HasPrefix(l, lab.RS1Mgmt+" ") {
			rs1Key = strings.TrimPrefix(l, lab.RS1Mgmt+" ")
		}
	}
	for _, l := range strings.Split(string(known), "\n") {
		if strings.HasPrefix(l, lab.DirectorMgmt+" ") {
			l = lab.DirectorMgmt + " " + rs1Key
		}
		changed = append(changed, l)
	}
	out, err := lab.Exec("control", "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "stranger"))
	if err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	src, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	wrongUser := write("wrong-user.hcl", strings.Replace(string(src), `user          = "root"`, `user          = "nosuchuser"`, 1))
	unreachable := write("unreachable.hcl", strings.Replace(string(src), `host = "198.19.0.11"`, `host = "198.19.0.99"`, 1))
	cases := []struct {
		name  string
		plan  string
		args  []string
		setup string // on the director, before
		want  string
	}{
		{"unknown host key", example, []string{"--var", "known_hosts=" + write("empty", "")}, "", "host lvs01: ssh root@198.19.0.11:22: ssh: handshake failed: host key unknown: ssh-ed25519 SHA256:"},
		{"changed host key", example, []string{"--var", "known_hosts=" + write("changed", strings.Join(changed, "\n"))}, "", "host key CHANGED: the host presented ssh-ed25519 SHA256:"},
		{"key refused", example, []string{"--var", "ssh_key=" + filepath.Join(dir, "stranger")}, "", "host lvs01: ssh root@198.19.0.11:22: authentication refused (wrong user or key not authorized)"},
		{"wrong user", wrongUser, nil, "", "host lvs01: ssh nosuchuser@198.19.0.11:22: authentication refused"},
		{"unreachable host", unreachable, nil, "", "host lvs01: connect 198.19.0.99:22:"},
		{"helper directory with wrong owner", example, nil, "mkdir -p /var/lib/tunplan/bin && chown nobody /var/lib/tunplan/bin",
			"host lvs01: refusing helper directory /var/lib/tunplan/bin: want owner root and mode 0700"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sh(t, "director", "rm -rf /var/lib/tunplan; "+c.setup)
			defer sh(t, "director", "rm -rf /var/lib/tunplan")
			out := mustTunplan(t, c.plan, 1, append([]string{"diff", "--hosts", "lvs01"}, c.args...)...)
			var errLines []string
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, "Error: ") {
					errLines = append(errLines, l)
				}
			}
			if len(errLines) != 1 || !strings.Contains(errLines[0], c.want) {
				t.Errorf("want one error line containing %q, got:\n%s", c.want, out)
			}
		})
	}
}
