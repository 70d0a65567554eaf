package lab

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

// runBaseline runs the hand-written scripts of the original write-up on the lab hosts.
func runBaseline(t *testing.T) {
	t.Helper()
	scripts, err := filepath.Abs("../scripts")
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct{ host, cmd string }{
		{"rs1", scripts + "/realserver.sh " + VIP},
		{"rs2", scripts + "/realserver.sh " + VIP},
		{"director", scripts + "/director.sh " + VIP + " 198.18.1.183 198.18.10.182"},
	} {
		if out, err := Sh(step.host, step.cmd); err != nil {
			t.Fatalf("%s: %s: %v\n%s", step.host, step.cmd, err, out)
		}
	}
}

// TestBaselineManualSetup reproduces the write-up's manual set-up and checks the three properties
// of LVS-TUN on the real kernel.
func TestBaselineManualSetup(t *testing.T) {
	if err := Reset(); err != nil {
		t.Fatal(err)
	}
	runBaseline(t)
	traffic, err := Probe(6)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + traffic.Summary())
	for _, p := range traffic.Problems("198.18.48.181", "198.18.1.183", "198.18.10.182") {
		t.Error(p)
	}
}

// TestWithoutRealserverSetupTrafficFails shows the probe can fail: with the director set up but the
// realservers not (no VIP on tunl0, rp_filter on), no answer comes back.
func TestWithoutRealserverSetupTrafficFails(t *testing.T) {
	if err := Reset(); err != nil {
		t.Fatal(err)
	}
	scripts, _ := filepath.Abs("../scripts")
	if out, err := Sh("director", scripts+"/director.sh "+VIP+" 198.18.1.183 198.18.10.182"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	traffic, err := Probe(2)
	if err != nil {
		t.Fatal(err)
	}
	if len(traffic.Problems("198.18.48.181", "198.18.1.183", "198.18.10.182")) == 0 {
		t.Errorf("traffic passed although the realservers were not set up:\n%s", traffic.Summary())
	}
}

// TestHostsArePrivate checks that per-host state does not leak: /var/lib and /tmp are per host.
func TestHostsArePrivate(t *testing.T) {
	if _, err := Sh("rs1", "mkdir -p /var/lib/tunplan && echo rs1 > /var/lib/tunplan/probe && echo x > /tmp/probe"); err != nil {
		t.Fatal(err)
	}
	defer Sh("rs1", "rm -rf /var/lib/tunplan /tmp/probe")
	for _, h := range []string{"rs2", "director", "control"} {
		if out, _ := Sh(h, "cat /var/lib/tunplan/probe /tmp/probe 2>/dev/null"); out != "" {
			t.Errorf("%s sees rs1's files: %q", h, out)
		}
	}
	if name, _ := Exec("rs2", "hostname"); name != "rs2\n" {
		t.Errorf("rs2's hostname is %q", name)
	}
	if _, err := os.Stat(SSHKey()); err != nil {
		t.Errorf("no SSH key: %v", err)
	}
}
