//go:build unix

// The helper's start and install scripts run on Linux hosts: these tests run them with this
// machine's sh and coreutils, so they build where those exist (not on Windows).

package inventory

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// The scripts that start and install the helper, run by the real sh, gzip, sha256sum, stat and
// install on this machine, in a temporary directory instead of HelperDir.
func TestHelperScripts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the scripts check for root-owned files: run as root (make test does, as CI)")
	}
	base := t.TempDir()
	dir := filepath.Join(base, "tunplan", "bin")
	stable := filepath.Join(dir, "tunplan-helper")
	unit := filepath.Join(base, "tunplan-restore.service")
	units := []string{unit, filepath.Join(base, "tunplan-restore-late.service")}
	// The stand-in helper prints its arguments and echoes its input.
	stub := []byte("#!/bin/sh\necho \"args: $*\"\ncat\n")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(stub)
	zw.Close()
	sum := sha256.Sum256(stub)
	h := Helper{Gzip: gz.Bytes(), SHA256: hex.EncodeToString(sum[:])}
	const conn = "198.18.0.1 50000 198.18.0.2 22"
	run := func(script string) (stdout, stderr string, code int) {
		cmd := exec.Command("sh", "-c", script, "tunplan", conn)
		cmd.Stdin = strings.NewReader("request\n")
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return o.String(), e.String(), code
	}
	upload := func() string {
		p := filepath.Join(base, "upload-"+randomSuffix()+".gz")
		if err := os.WriteFile(p, h.Gzip, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	started := helperReady + "\nargs: --ssh-connection " + conn + "\nrequest\n"
	arch, _ := exec.Command("uname", "-m").Output()

	// No helper yet: the architecture, and nothing else since the directory does not exist.
	out, errOut, code := run(runScript(dir, stable, []string{h.Name()}))
	if code != needHelper || out != "" || errOut != factsHeader+"\n"+string(arch) {
		t.Fatalf("no helper: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// Installed: two old versions and a concurrent upload are there. The old version that the
	// restore unit of an older build still names stays, the other goes; the stable path is the
	// new helper.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	named := filepath.Join(dir, "tunplan-helper-2222222222222222")
	for _, f := range []string{"tunplan-helper-0000000000000000", "tunplan-helper-1111111111111111.tmp-abc", filepath.Base(named), "tunplan-helper"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o700)
	}
	os.WriteFile(unit, []byte("ConditionPathExists="+named+"\nExecStart="+named+" restore\n"), 0o644)
	gzPath := upload()
	if out, errOut, code := run(installScript(dir, stable, gzPath, h, units)); code != 0 || out != started {
		t.Fatalf("install: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	kept := sortedNames("tunplan-helper", "tunplan-helper-1111111111111111.tmp-abc", filepath.Base(named), h.Name())
	if got := ls(t, dir); got != kept {
		t.Errorf("after install the helper directory has %s, want %s", got, kept)
	}
	sameFile(t, stable, filepath.Join(dir, h.Name()))
	if _, err := os.Stat(gzPath); !os.IsNotExist(err) {
		t.Errorf("the upload is still there: %v", err)
	}
	// Current: started at once, and the stable path, gone or another helper, is made it again.
	for _, other := range []bool{false, true} {
		os.Remove(stable)
		if other {
			os.Link(named, stable)
		}
		if out, errOut, code := run(runScript(dir, stable, []string{"tunplan-helper-ffffffffffffffff", h.Name()})); code != 0 || out != started {
			t.Fatalf("current helper: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		sameFile(t, stable, filepath.Join(dir, h.Name()))
	}
	if got := ls(t, dir); got != kept {
		t.Errorf("after a start the helper directory has %s, want %s", got, kept)
	}
	// Runs starting at once race to link the stable path: every one starts.
	os.Remove(stable)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, errOut, code := run(runScript(dir, stable, []string{h.Name()})); code != 0 || out != started {
				t.Errorf("concurrent start: exit %d, stdout %q, stderr %q", code, out, errOut)
			}
		}()
	}
	wg.Wait()
	sameFile(t, stable, filepath.Join(dir, h.Name()))
	// A directory others could write to: not started, and the facts show the mode.
	os.Chmod(dir, 0o755)
	out, errOut, code = run(runScript(dir, stable, []string{h.Name()}))
	_, facts := parseHelperFacts(errOut)
	if code != needHelper || out != "" || facts == nil || facts.mode != 0o755 {
		t.Fatalf("open directory: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	os.Chmod(dir, 0o700)
	// A corrupted upload: refused, and nothing of it is left.
	bad := h
	bad.SHA256 = strings.Repeat("ab", 32)
	gzPath = upload()
	out, errOut, code = run(installScript(dir, stable, gzPath, bad, units))
	want := fmt.Sprintf("helper upload corrupted: sha256 %s on the host, %s sent\n", h.SHA256, bad.SHA256)
	if code != installFailed || out != "" || errOut != want {
		t.Fatalf("corrupted upload: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if got := ls(t, dir); got != kept {
		t.Errorf("after a corrupted upload the helper directory has %s, want %s", got, kept)
	}
	sameFile(t, stable, filepath.Join(dir, h.Name()))
	if _, err := os.Stat(gzPath); !os.IsNotExist(err) {
		t.Errorf("the corrupted upload is still there: %v", err)
	}
}

func ls(t *testing.T, dir string) string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return strings.Join(names, " ")
}

func sortedNames(names ...string) string {
	slices.Sort(names)
	return strings.Join(names, " ")
}

// sameFile fails unless a and b are one file (hard links).
func sameFile(t *testing.T, a, b string) {
	t.Helper()
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	if errA != nil || errB != nil || !os.SameFile(sa, sb) {
		t.Errorf("%s is not %s (%v, %v)", a, b, errA, errB)
	}
}
