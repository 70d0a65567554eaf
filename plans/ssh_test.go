package plans

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// TestMissingKnownHosts: every known_hosts file the hosts (or their jump hosts) would be checked
// against and that does not exist is one warning, at the known_hosts attribute that names it (the
// host block for the default), saying how to fill it. Loading still succeeds.
func TestMissingKnownHosts(t *testing.T) {
	// DIR is replaced by a temporary directory holding the file "present"; HOME is the test's home
	// (with ~/.ssh/known_hosts) unless emptyHome.
	const (
		topSSH = "ssh {\n  known_hosts = \"DIR/missing\"\n}\n" // lines 1-3; the value at 2:17
		used   = `realserver "r2" {}`                          // so that no host is unused
	)
	host := func(name, role, addr, ssh string) string {
		return fmt.Sprintf("host %q {\n  role    = %q\n  address = %q\n%s}\n", name, role, addr, ssh)
	}
	type warning struct {
		rng     string   // line:column of the subject's start
		details []string // each in the detail
	}
	cases := []struct {
		name      string
		src       string
		emptyHome bool
		want      []warning
	}{
		{"file exists", strings.Replace(topSSH, "missing", "present", 1) + base + svc(used), false, nil},
		{"default file missing", base + svc(used), true, []warning{{"1:1", []string{
			"HOME/.ssh/known_hosts does not exist, so tunplan cannot verify the host keys of d1, r1 and r2 and will refuse to connect.",
			"\n\n  ssh-keyscan -H 198.18.0.1 >> HOME/.ssh/known_hosts\n  ssh-keyscan -H 198.18.1.1 >> HOME/.ssh/known_hosts\n  ssh-keyscan -H 198.18.1.2 >> HOME/.ssh/known_hosts",
		}}}},
		{"top-level ssh names a missing file", topSSH + base + svc(used), false, []warning{{"2:17", []string{
			"DIR/missing does not exist", "host keys of d1, r1 and r2",
			"ssh-keyscan -H 198.18.0.1 >> DIR/missing\n  ssh-keyscan -H 198.18.1.1 >> DIR/missing\n  ssh-keyscan -H 198.18.1.2 >> DIR/missing",
		}}}},
		{"one host's ssh block names a missing file",
			host("d1", "director", "198.18.0.1", "") + host("r1", "realserver", "198.18.1.1", "") +
				host("r2", "realserver", "198.18.1.2", "  ssh {\n    host        = \"198.19.1.2\"\n    port        = 2222\n    known_hosts = \"DIR/missing\"\n  }\n") + svc(used),
			false, []warning{{"15:19", []string{"DIR/missing does not exist, so tunplan cannot verify the host keys of r2 and",
				"\n\n  ssh-keyscan -H -p 2222 198.19.1.2 >> DIR/missing"}}}},
		{"jump host", strings.Replace(topSSH, "}", "  jump        = \"ops@198.19.9.9:2200\"\n}", 1) + base + svc(used), false, []warning{{"2:17", []string{
			"  ssh-keyscan -H 198.18.0.1 >> DIR/missing\n  ssh-keyscan -H -p 2200 198.19.9.9 >> DIR/missing\n  ssh-keyscan -H 198.18.1.1 >> DIR/missing\n  ssh-keyscan -H 198.18.1.2 >> DIR/missing",
			"A host reached through a jump host may answer only there: run its ssh-keyscan on the jump host.",
		}}}},
		{"two missing files, in declaration order",
			host("d1", "director", "198.18.0.1", "  ssh {\n    known_hosts = \"DIR/first\"\n  }\n") + topSSH + base[strings.Index(base, "host \"r1\""):] + svc(used),
			false, []warning{
				{"5:19", []string{"DIR/first does not exist, so tunplan cannot verify the host keys of d1 and", "ssh-keyscan -H 198.18.0.1 >> DIR/first"}},
				{"9:17", []string{"DIR/missing does not exist, so tunplan cannot verify the host keys of r1 and r2 and"}},
			}},
		{"a path the shell must quote", strings.Replace(topSSH, "missing", "my known_hosts", 1) + base + svc(used), false, []warning{{"2:17", []string{
			"DIR/my known_hosts does not exist", "ssh-keyscan -H 198.18.0.1 >> 'DIR/my known_hosts'",
		}}}},
		{"many hosts", topSSH + host("d1", "director", "198.18.0.1", "") +
			"dynamic \"host\" {\n  for_each = range(1, 7)\n  labels   = [\"r${host.value}\"]\n  content {\n    role    = \"realserver\"\n    address = \"198.18.1.${host.value}\"\n  }\n}\n" +
			"virtual_service \"web\" {\n  vip       = \"198.18.48.10\"\n  port      = 80\n  directors = [\"d1\"]\n  dynamic \"realserver\" {\n    for_each = range(1, 7)\n    labels   = [\"r${realserver.value}\"]\n    content {}\n  }\n}\n",
			false, []warning{{"2:17", []string{
				"host keys of d1, r1, r2, r3 and 3 more and",
				"  ssh-keyscan -H 198.18.1.3 >> DIR/missing\n  … and likewise for the 3 other SSH addresses of these hosts",
			}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "present"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			home, _ := os.UserHomeDir()
			if c.emptyHome {
				home = t.TempDir()
				t.Setenv("HOME", home)
				t.Setenv("USERPROFILE", home)
			}
			p, _, diags := Load("test.hcl", []byte(strings.ReplaceAll(c.src, "DIR", dir)), nil)
			if p == nil || diags.HasErrors() {
				t.Fatalf("a missing known_hosts must not fail loading: %v", diags)
			}
			if len(diags) != len(c.want) {
				t.Fatalf("%d diagnostics, want %d: %v", len(diags), len(c.want), diags)
			}
			for i, d := range diags {
				w := c.want[i]
				if d.Severity != hcl.DiagWarning || d.Summary != "known_hosts file not found" || d.Subject == nil || d.Subject.Filename != "test.hcl" ||
					fmt.Sprintf("%d:%d", d.Subject.Start.Line, d.Subject.Start.Column) != w.rng {
					t.Errorf("diagnostic %d: %v %q at %v, want a warning \"known_hosts file not found\" at %s", i, d.Severity, d.Summary, d.Subject, w.rng)
				}
				for _, s := range w.details {
					s = strings.NewReplacer("DIR", dir, "HOME", home).Replace(s)
					if !strings.Contains(d.Detail, s) {
						t.Errorf("diagnostic %d: detail lacks %q:\n%s", i, s, d.Detail)
					}
				}
			}
		})
	}
}
