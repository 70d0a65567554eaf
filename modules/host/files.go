package host

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tunplan/tunplan/modules/files"
	"github.com/tunplan/tunplan/modules/protocol"
)

// What errors and doctor call the state files besides the generations.
const (
	claimName   = "the claim"
	lastRunName = "the last-run record"
)

// repairHint is what to do about a state file that cannot be read.
const repairHint = "run `tunplan doctor` to see how to repair it"

// stateError is a state file under Dir that exists but cannot be used: what names it ("generation
// 3"), path is where it is, err what is wrong.
type stateError struct {
	what, path string
	err        error
}

func (e *stateError) Error() string {
	return fmt.Sprintf("%s (%s) is unreadable: %v", e.what, e.path, e.err)
}

func (e *stateError) Unwrap() error { return e.err }

// readState reads the state file at path, which what names, into v. A file that is not there is
// an error wrapping fs.ErrNotExist; one that cannot be read or decoded is a *stateError.
func readState(what, path string, v any) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err == nil && len(bytes.TrimSpace(b)) == 0 {
		// What a crash leaves of a file whose data never reached the disk: say so, rather than
		// json's "unexpected end of JSON input".
		err = errors.New("the file is empty")
	}
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		return &stateError{what: what, path: path, err: err}
	}
	return nil
}

// withRepair adds to an error caused by an unreadable state file what to do about it.
func withRepair(err error) error {
	var se *stateError
	if errors.As(err, &se) {
		return fmt.Errorf("%w; %s", err, repairHint)
	}
	return err
}

// writeJSON replaces path atomically with v, readable by root alone.
func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return files.Replace(path, b, 0o600)
}

// mkdirPrivate makes directories readable by their owner only.
func mkdirPrivate(dirs ...string) error {
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return err
		}
	}
	return nil
}

// locked runs fn holding the host lock (flock on Dir/lock) and the host's claim (Dir/claim). The
// kernel drops a flock when its holder dies, so a lock left by a dead process is simply free. The
// claim keeps the host for one run between its helper calls: it names the SSH connection of the run
// that made it, and it holds while that connection is open, so a second run is turned away for the
// whole of the first (a run has one connection per host). A held lock or claim is waited for up to
// req.LockWaitMS, then fails, naming its holder.
func (e *Engine) locked(req protocol.Request, fn func() error) error {
	if err := mkdirPrivate(e.Dir); err != nil {
		return err
	}
	path := filepath.Join(e.Dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	wait := time.Duration(req.LockWaitMS) * time.Millisecond
	deadline := time.Now().Add(wait)
	for {
		var holder string
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			if holder = e.otherClaim(); holder != "" {
				syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
			}
		case errors.Is(err, syscall.EWOULDBLOCK):
			b, _ := os.ReadFile(path)
			if holder = strings.TrimSpace(string(b)); holder == "" {
				holder = "holder unknown"
			}
		default:
			return fmt.Errorf("lock %s: %w", path, err)
		}
		if holder == "" {
			break
		}
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("host is locked by another tunplan run (%s)", holder)
			if wait > 0 {
				msg += fmt.Sprintf("; gave up after waiting %v", wait)
			}
			return errors.New(msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	since := time.Now().UTC().Format(time.RFC3339)
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte("pid "+strconv.Itoa(os.Getpid())+" since "+since+" by "+req.Actor+"\n"), 0)
	if e.claims() {
		if err := writeJSON(e.claimPath(), claim{Connection: e.Session.String(), RunID: req.RunID, Actor: req.Actor, Since: since}); err != nil {
			return fmt.Errorf("claim the host: %w", err)
		}
	}
	return fn()
}

// claim is the run that has the host, by the SSH connection it came over.
type claim struct {
	Connection string `json:"connection"` // its SSH_CONNECTION
	RunID      string `json:"run_id,omitempty"`
	Actor      string `json:"actor,omitempty"`
	Since      string `json:"since"`
}

func (e *Engine) claimPath() string { return filepath.Join(e.Dir, "claim") }

func (e *Engine) claims() bool { return e.Session != nil && e.Open != nil }

// otherClaim describes the claim of another run whose connection is still open, or is "".
func (e *Engine) otherClaim() string {
	var c claim
	if !e.claims() || readState(claimName, e.claimPath(), &c) != nil || c.Connection == e.Session.String() {
		return ""
	}
	s := ParseSession(c.Connection)
	if s == nil || !e.Open(s) {
		return "" // its run is over: the connection it came over is closed
	}
	return fmt.Sprintf("run %s since %s by %s, connected from %s", c.RunID, c.Since, c.Actor, s.Client)
}

func (e *Engine) lastRunPath() string { return filepath.Join(e.Dir, "last-run.json") }

// recordLastRun writes the outcome of an apply or rollback before the helper answers: if the answer
// never reaches the CLI, the next run still learns what happened.
func (e *Engine) recordLastRun(req protocol.Request, resp protocol.Response, err error) error {
	rec := protocol.LastRun{Op: req.Op, RunID: req.RunID, Actor: req.Actor, Time: e.now(), Outcome: resp.Outcome,
		Changes: len(resp.Changes), Generation: resp.Generation}
	if err != nil {
		rec.Error = err.Error()
		if rec.Outcome == "" {
			rec.Outcome = protocol.FailedBeforeChanging
		}
	}
	e.lastRun = &rec
	if werr := writeJSON(e.lastRunPath(), rec); werr != nil {
		return fmt.Errorf("record the outcome: %w", werr)
	}
	return nil
}

// Delivered marks the latest run of this process as reported to its CLI (the helper wrote its
// answer). It does nothing if another run holds the lock or has recorded a newer run since.
func (e *Engine) Delivered() {
	last := e.lastRun
	e.lastRun = nil // a helper serves several requests: each answer delivers its own run
	if last == nil {
		return
	}
	f, err := os.OpenFile(filepath.Join(e.Dir, "lock"), os.O_RDWR, 0)
	if err != nil {
		return
	}
	defer f.Close()
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		return
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	var cur protocol.LastRun
	if readState(lastRunName, e.lastRunPath(), &cur) != nil || cur != *last {
		return
	}
	cur.Reported = true
	_ = writeJSON(e.lastRunPath(), cur)
}

// lastRunToTell is the latest run when the operator may not know its outcome: its CLI never got the
// answer (told once: delivering this diff marks it reported), or restoring the snapshot failed (told
// until a later run records another outcome).
func (e *Engine) lastRunToTell() *protocol.LastRun {
	var rec protocol.LastRun
	if readState(lastRunName, e.lastRunPath(), &rec) != nil {
		return nil
	}
	if rec.Reported && rec.Outcome != protocol.RestoreFailed {
		return nil
	}
	told := rec
	e.lastRun = &told
	return &rec
}
