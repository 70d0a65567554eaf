package host

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tunplan/tunplan/modules/files"
	"github.com/tunplan/tunplan/modules/protocol"
)

const testHelper = "/var/lib/tunplan/bin/tunplan-helper-0123456789abcdef"

// bootEngine is an engine that writes the boot files under root.
func bootEngine(t *testing.T, f *fakeKernel, dir, root string, systemd bool) *Engine {
	e := newEngine(t, f)
	e.Dir = dir
	e.Files, e.Helper, e.Systemd = files.Root(root), testHelper, func() bool { return systemd }
	return e
}

func read(t *testing.T, root, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

func TestApplyInstallsTheBootRestore(t *testing.T) {
	dir, root := t.TempDir(), t.TempDir()
	e := bootEngine(t, newFake(), dir, root, false)
	resp := mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: director("rr", 1, 1), RunID: "r1"})
	if unit := read(t, root, protocol.RestoreUnit); !strings.Contains(unit, "\nExecStart="+testHelper+" restore\n") || !strings.Contains(unit, "WantedBy=sysinit.target") {
		t.Errorf("unit:\n%s", unit)
	}
	if link, err := os.Readlink(filepath.Join(root, protocol.RestoreLink)); err != nil || link != protocol.RestoreUnit {
		t.Errorf("enable link: %q %v", link, err)
	}
	if mods := read(t, root, protocol.ModulesLoad); !strings.HasSuffix(mods, "\nip_vs\nip_vs_rr\nipip\n") {
		t.Errorf("modules-load.d:\n%s", mods)
	}
	if sysctls := read(t, root, protocol.SysctlFile); !strings.HasSuffix(sysctls, "\nnet.ipv4.ip_forward = 1\n") {
		t.Errorf("sysctl.d:\n%s", sysctls)
	}
	if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "systemd is not running on this host") || !strings.Contains(resp.Warnings[0], testHelper+" restore") {
		t.Errorf("warnings %q", resp.Warnings)
	}
	if with := bootEngine(t, newFake(), t.TempDir(), t.TempDir(), true); len(mustHandle(t, with, protocol.Request{Op: protocol.OpApply, Desired: director("rr", 1, 1)}).Warnings) != 0 {
		t.Error("a warning with systemd running")
	}
}

// A missing or stale boot restore is drift, like any other, and apply fixes it.
func TestMissingOrStaleBootRestoreIsDrift(t *testing.T) {
	dir, root := t.TempDir(), t.TempDir()
	f := newFake()
	e := bootEngine(t, f, dir, root, true)
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: director("rr", 1, 1), RunID: "r1"})
	if d := mustHandle(t, e, protocol.Request{Op: protocol.OpDiff, Desired: director("rr", 1, 1)}); len(d.Changes) != 0 {
		t.Fatalf("drift right after apply: %v", d.Changes)
	}
	os.Remove(filepath.Join(root, protocol.RestoreUnit))
	d := mustHandle(t, e, protocol.Request{Op: protocol.OpDiff, Desired: director("rr", 1, 1)})
	if got := addresses(d.Changes); strings.Join(got, ",") != "+ file "+protocol.RestoreUnit {
		t.Errorf("unit removed: %v", got)
	}
	upgraded := bootEngine(t, f, dir, root, true)
	upgraded.Helper = "/var/lib/tunplan/bin/tunplan-helper-fedcba9876543210"
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: director("rr", 1, 1), RunID: "r2"})
	d = mustHandle(t, upgraded, protocol.Request{Op: protocol.OpDiff, Desired: director("rr", 1, 1)})
	if got := addresses(d.Changes); strings.Join(got, ",") != "~ file "+protocol.RestoreUnit {
		t.Errorf("unit of another helper: %v", got)
	}
}

// A "reboot" (the kernel forgets, /etc and /var/lib stay) is undone by Restore alone.
func TestRestoreRebuildsTheLatestGeneration(t *testing.T) {
	dir, root := t.TempDir(), t.TempDir()
	before := newFake()
	e := bootEngine(t, before, dir, root, true)
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: director("rr", 1, 1), RunID: "r1"})
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: director("wrr", 3, 1), RunID: "r2"})
	rebooted := newFake()
	var log bytes.Buffer
	if err := bootEngine(t, rebooted, dir, root, true).Restore(&log, false); err != nil {
		t.Fatal(err)
	}
	if strip(rebooted.dump()) != strip(before.dump()) {
		t.Errorf("after restore:\n%s\nbefore the reboot:\n%s", rebooted.dump(), before.dump())
	}
	if !strings.Contains(log.String(), "generation 2 (apply of run r2") || !strings.Contains(log.String(), "+ ipvs tcp/198.18.48.180:80 -> 198.18.1.183:80  weight=3 fwd=tunnel") {
		t.Errorf("log:\n%s", log.String())
	}
	log.Reset()
	if err := bootEngine(t, rebooted, dir, root, true).Restore(&log, false); err != nil || !strings.Contains(log.String(), ": 0 changes") {
		t.Errorf("second restore: %v\n%s", err, log.String())
	}
	log.Reset()
	if err := bootEngine(t, newFake(), t.TempDir(), root, true).Restore(&log, false); err != nil || !strings.Contains(log.String(), "nothing to restore") {
		t.Errorf("no history: %v\n%s", err, log.String())
	}
}

// The boot files follow the state: a host the plan leaves loses them, and rollback to generation 0
// leaves the host as it was before tunplan, without them.
func TestBootFilesLeaveWithTheState(t *testing.T) {
	for _, c := range []struct {
		name string
		req  protocol.Request
	}{
		{"empty plan", protocol.Request{Op: protocol.OpApply, Desired: protocol.State{}, RunID: "r2"}},
		{"rollback to 0", protocol.Request{Op: protocol.OpRollback, To: new(int), RunID: "r2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			e := bootEngine(t, newFake(), t.TempDir(), root, true)
			mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: director("rr", 1, 1), RunID: "r1"})
			mustHandle(t, e, c.req)
			for _, p := range []string{protocol.RestoreUnit, protocol.RestoreLink, protocol.ModulesLoad, protocol.SysctlFile} {
				if _, err := os.Lstat(filepath.Join(root, p)); !os.IsNotExist(err) {
					t.Errorf("%s still there: %v", p, err)
				}
			}
		})
	}
}
