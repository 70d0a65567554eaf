package inventory

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"github.com/tunplan/tunplan/modules/protocol"
	"golang.org/x/crypto/ssh"
)

// Helper is one build of the helper as it travels: gzip-compressed (less than half the bytes), with
// the SHA-256 of the binary it unpacks to.
type Helper struct {
	Gzip   []byte
	SHA256 string // hex
}

// Name is the helper's file name on a host: it carries the hash, so a new build gets a new name.
func (h Helper) Name() string { return "tunplan-helper-" + h.SHA256[:16] }

// Helpers hands out the embedded helpers.
type Helpers interface {
	// Binary is the helper for a machine architecture as `uname -m` names it.
	Binary(arch string) (Helper, error)
	// Names are the file names of every embedded helper (Helper.Name).
	Names() []string
}

// The helper serves one run's requests over one SSH session per host: the CLI writes a request as
// one line of JSON, the helper answers with one line, until the CLI closes its input (helperReady
// comes first). Starting it is one remote command when the host has the current helper; otherwise
// that command reports what the host has (exit status needHelper), the helper is uploaded over SFTP,
// and a second command unpacks, checks and installs it, then starts it.
const (
	helperReady   = "tunplan-helper-ready"
	factsHeader   = "tunplan-helper-facts"
	needHelper    = 111
	installFailed = 112
)

// StartHelper starts the helper on the host, uploading it first when the host lacks the current one.
func (c *Conn) StartHelper(hs Helpers) error {
	err := c.start(runScript(protocol.HelperDir, protocol.HelperPath, hs.Names()))
	var missing *missingHelper
	if !errors.As(err, &missing) {
		return err
	}
	arch, dir := parseHelperFacts(missing.facts)
	h, err := hs.Binary(arch)
	if err != nil {
		return fmt.Errorf("host %s: %w", c.Target.Name, err)
	}
	if dir != nil {
		if err := c.helperDirOK(dir.uid, dir.mode); err != nil {
			return err
		}
	}
	gz := "/tmp/" + h.Name() + ".gz-" + randomSuffix()
	if err := c.upload(gz, h.Gzip); err != nil {
		return err
	}
	return c.start(installScript(protocol.HelperDir, protocol.HelperPath, gz, h, []string{protocol.RestoreUnit, protocol.RestoreLateUnit}))
}

// runScript starts an installed helper (one of names) from dir when dir is root's with mode 0700,
// making stable (protocol.HelperPath, what the boot units run) that helper first; or else reports
// on standard error the architecture and dir's owner and mode, and exits needHelper. "$1" is the SSH
// connection (see command).
func runScript(dir, stable string, names []string) string {
	var paths []string
	for _, n := range names {
		paths = append(paths, shellQuote(path.Join(dir, n)))
	}
	return fmt.Sprintf(`d=%[1]s s=%[6]s
for h in %[2]s; do
  if [ -x "$h" ] && [ "$(stat -c %%u:%%a "$d")" = 0:700 ]; then
    %[7]s
    echo %[3]s; exec "$h" --ssh-connection "$1"
  fi
done
{ echo %[5]s; uname -m; stat -c '%%u %%a' "$d" 2>/dev/null; } >&2
exit %[4]d`, shellQuote(dir), strings.Join(paths, " "), helperReady, needHelper, factsHeader, shellQuote(stable), linkStable())
}

// installScript unpacks the uploaded helper gz into dir under a temporary name, checks its hash,
// renames it into place, makes stable that helper, removes other versions (not uploads in progress:
// they may be a concurrent run's; not one that a unit of units still names: a build before the
// stable path wrote its own path into the boot units) and starts it. On failure it removes what it
// wrote and exits installFailed.
func installScript(dir, stable, gz string, h Helper, units []string) string {
	final := path.Join(dir, h.Name())
	var quoted []string
	for _, u := range units {
		quoted = append(quoted, shellQuote(u))
	}
	return fmt.Sprintf(`t=%[4]s.tmp-%[5]s
fail() { rm -f "$t" %[3]s; echo "$*" >&2; exit %[7]d; }
install -d -o root -m 0700 %[1]s %[2]s || fail "cannot create %[2]s"
gzip -dc %[3]s > "$t" && chmod 0700 "$t" || fail "cannot unpack the helper"
sum=$(sha256sum "$t") && sum=${sum%%%% *}
[ "$sum" = %[6]s ] || fail "helper upload corrupted: sha256 $sum on the host, %[6]s sent"
mv -f "$t" %[4]s && rm -f %[3]s || fail "cannot install the helper"
h=%[4]s s=%[9]s
%[10]s
for o in %[2]s/tunplan-helper-*; do case $o in %[4]s|*.tmp-*) ;; *) grep -qsF "$o" %[11]s || rm -f "$o";; esac; done
echo %[8]s; exec %[4]s --ssh-connection "$1"`,
		shellQuote(path.Dir(dir)), shellQuote(dir), shellQuote(gz), shellQuote(final), randomSuffix(), h.SHA256, installFailed, helperReady,
		shellQuote(stable), linkStable(), strings.Join(quoted, " "))
}

// linkStable is the line that makes "$s" a hard link to the helper "$h", unless it is one already:
// a new link renamed over it, so a boot never finds it missing. A hard link, not a symbolic one, so
// that an older build removing "$h" (it removes every version but its own) cannot take it away.
// Two runs starting at once race to link it (mv refuses to rename a link over the same file): the
// loser is content when "$s" is a helper all the same, and fails only when there is none.
func linkStable() string {
	return fmt.Sprintf(`if ! [ "$h" -ef "$s" ]; then ln -f "$h" "$s.tmp-$$" && mv -f "$s.tmp-$$" "$s" 2>/dev/null; rm -f "$s.tmp-$$"; [ -x "$s" ] || { echo "cannot link $s to $h" >&2; exit %d; }; fi`, installFailed)
}

// missingHelper is runScript's answer when the host has no current helper: what it found.
type missingHelper struct{ facts string }

func (*missingHelper) Error() string { return "no current helper" }

// helperProc is the helper serving this connection's requests.
type helperProc struct {
	s      *ssh.Session
	in     io.WriteCloser
	out    *bufio.Reader
	stderr *lockedBuffer
}

// lockedBuffer holds the helper's standard error: the session's copier writes it while a timed-out
// request reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// command wraps a script so that it runs as root, with the SSH connection as "$1": the login shell
// expands SSH_CONNECTION before sudo would drop it, and the helper refuses changes that would cut
// this session.
func (c *Conn) command(script string) string {
	if c.Target.Sudo {
		return "sudo -n sh -c " + shellQuote(script) + ` tunplan "$SSH_CONNECTION"`
	}
	return `set -- "$SSH_CONNECTION"` + "\n" + script
}

// start runs a script that ends by starting the helper, and waits for the helper's ready line.
func (c *Conn) start(script string) error {
	s, err := c.client.NewSession()
	if err != nil {
		return fmt.Errorf("host %s: %w", c.Target.Name, err)
	}
	p := &helperProc{s: s, stderr: &lockedBuffer{}}
	s.Stderr = p.stderr
	p.in, err = s.StdinPipe()
	var out io.Reader
	if err == nil {
		out, err = s.StdoutPipe()
	}
	if err == nil {
		err = s.Start(c.command(script))
	}
	if err != nil {
		s.Close()
		return fmt.Errorf("host %s: start helper: %w", c.Target.Name, err)
	}
	p.out = bufio.NewReader(out)
	err = timeout(CommandTimeout, s, func() error {
		for {
			line, err := p.out.ReadString('\n')
			if err != nil {
				return err
			}
			if strings.TrimSpace(line) == helperReady {
				return nil
			}
		}
	})
	if err == nil {
		c.proc = p
		return nil
	}
	if errors.Is(err, io.EOF) {
		err = s.Wait()
	}
	s.Close()
	var ee *ssh.ExitError
	if errors.As(err, &ee) && ee.ExitStatus() == needHelper {
		return &missingHelper{facts: p.stderr.String()}
	}
	return fmt.Errorf("host %s: start helper: %w", c.Target.Name, c.explain(err, p.stderr.String()))
}

// Run sends one request to the helper and returns its response.
func (c *Conn) Run(req protocol.Request) (protocol.Response, error) {
	var resp protocol.Response
	p := c.proc
	if p == nil {
		return resp, fmt.Errorf("host %s: helper not started", c.Target.Name)
	}
	in, err := json.Marshal(req)
	if err != nil {
		return resp, err
	}
	var line []byte
	err = timeout(CommandTimeout, p.s, func() error {
		if _, err := p.in.Write(append(in, '\n')); err != nil {
			return err
		}
		l, err := p.out.ReadBytes('\n')
		line = l
		return err
	})
	if err != nil {
		c.proc = nil
		if !errors.Is(err, errTimeout) {
			err = p.s.Wait()
		}
		p.s.Close()
		var missing *ssh.ExitMissingError
		switch {
		case errors.As(err, &missing) || errors.Is(err, io.EOF):
			return resp, fmt.Errorf("host %s: the connection was lost before the helper answered; it finishes or restores on its own, and `tunplan diff` reports its outcome", c.Target.Name)
		case err == nil:
			err = errors.New("ended without answering")
		}
		return resp, fmt.Errorf("host %s: helper: %w", c.Target.Name, c.explain(err, p.stderr.String()))
	}
	if err := json.Unmarshal(line, &resp); err != nil {
		return resp, fmt.Errorf("host %s: helper answered something that is not a response: %w", c.Target.Name, err)
	}
	return resp, nil
}

// stopHelper ends the helper's input and waits a little for it to exit, so that what it does after
// its last answer (marking the outcome reported) is done when the run ends.
func (c *Conn) stopHelper() {
	p := c.proc
	if p == nil {
		return
	}
	c.proc = nil
	p.in.Close()
	_ = timeout(DialTimeout, p.s, p.s.Wait)
	p.s.Close()
}

var errTimeout = errors.New("timeout")

// timeout runs fn, and closes the session if fn has not returned after d.
func timeout(d time.Duration, s *ssh.Session, fn func() error) error {
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		s.Close()
		return fmt.Errorf("%w: no answer after %v (the helper may still finish on the host; `tunplan diff` shows the outcome)", errTimeout, d)
	}
}

// explain turns a remote command's failure into what to do about it.
func (c *Conn) explain(err error, stderr string) error {
	msg := strings.TrimSpace(stderr)
	if strings.Contains(msg, "sudo: a password is required") {
		return fmt.Errorf("sudo needs a password for %s; allow NOPASSWD for the helper or log in as root", c.Target.User)
	}
	var ee *ssh.ExitError
	if msg != "" && errors.As(err, &ee) {
		return errors.New(msg)
	}
	return err
}

func (c *Conn) helperDirOK(uid uint32, mode os.FileMode) error {
	if uid != 0 || mode != 0o700 {
		return fmt.Errorf("host %s: refusing helper directory %s: want owner root and mode 0700, have uid %d mode %#o", c.Target.Name, protocol.HelperDir, uid, mode)
	}
	return nil
}

// remoteDir is the helper directory's owner and mode, a line of `stat -c '%u %a'`.
type remoteDir struct {
	uid  uint32
	mode os.FileMode
}

// parseHelperFacts reads runScript's report: after factsHeader (the login may print something
// first, sshd a missing home directory), `uname -m`, then the helper directory's stat line when it
// exists (nil when it does not).
func parseHelperFacts(out string) (arch string, dir *remoteDir) {
	if _, after, ok := strings.Cut(out, factsHeader+"\n"); ok {
		out = after
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) > 1 {
		if f := strings.Fields(lines[1]); len(f) == 2 {
			uid, err1 := strconv.ParseUint(f[0], 10, 32)
			mode, err2 := strconv.ParseUint(f[1], 8, 32)
			if err1 == nil && err2 == nil {
				dir = &remoteDir{uid: uint32(uid), mode: os.FileMode(mode)}
			}
		}
	}
	return strings.TrimSpace(lines[0]), dir
}

// upload writes b over SFTP to a new file (never an existing one: the name is random and the file
// created exclusively), readable by the login user alone.
func (c *Conn) upload(name string, b []byte) error {
	sc, err := sftp.NewClient(c.client)
	if err != nil {
		return fmt.Errorf("host %s: sftp: %w", c.Target.Name, err)
	}
	defer sc.Close()
	f, err := sc.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return fmt.Errorf("host %s: upload helper: %w", c.Target.Name, err)
	}
	err = f.Chmod(0o600)
	if err == nil {
		var n int
		n, err = f.Write(b)
		c.uploaded += int64(n)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = sc.Remove(name)
		return fmt.Errorf("host %s: upload helper: %w", c.Target.Name, err)
	}
	return nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
