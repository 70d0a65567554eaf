package inventory

import (
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
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/tunplan/tunplan/modules/host"
)

// HelperDir is where the helper lives on a host: root-owned, mode 0700.
const HelperDir = "/var/lib/tunplan/bin"

// Helper is one build of the helper as it travels: gzip-compressed (less than half the bytes), with
// the size and SHA-256 of the binary it unpacks to.
type Helper struct {
	Gzip   []byte
	Size   int64
	SHA256 string // hex
}

// Helpers hands out the embedded helper for a machine architecture as `uname -m` names it.
type Helpers interface {
	Binary(arch string) (Helper, error)
}

// EnsureHelper makes sure the helper for the host's architecture is on the host under a name that
// carries its hash. A helper already there is not sent again; a new one is sent compressed, unpacked
// under a temporary name, its hash checked on the host, and only then renamed into place.
func (c *Conn) EnsureHelper(hs Helpers) error {
	// One command tells the architecture and, when the login can see them, the helper directory's
	// owner and mode and the helpers in it: a host whose helper is current needs nothing more.
	out, err := c.output("uname -m; stat -c '%u %a %s %n' " + HelperDir + " " + HelperDir + "/tunplan-helper-* 2>/dev/null; true")
	if err != nil {
		return fmt.Errorf("host %s: uname: %w", c.Target.Name, err)
	}
	arch, files := parseHelperFacts(out)
	h, err := hs.Binary(arch)
	if err != nil {
		return fmt.Errorf("host %s: %w", c.Target.Name, err)
	}
	final := path.Join(HelperDir, "tunplan-helper-"+h.SHA256[:16])
	if c.Target.Sudo {
		return c.ensureHelperSudo(h, final)
	}
	if dir, ok := files[HelperDir]; ok {
		if err := c.helperDirOK(dir.uid, dir.mode); err != nil {
			return err
		}
		if f, ok := files[final]; ok && f.size == h.Size {
			c.helper = final
			return nil
		}
	}
	sc, err := sftp.NewClient(c.client)
	if err != nil {
		return fmt.Errorf("host %s: sftp: %w", c.Target.Name, err)
	}
	defer sc.Close()
	if err := sc.MkdirAll(HelperDir); err != nil {
		return fmt.Errorf("host %s: create %s: %w", c.Target.Name, HelperDir, err)
	}
	for _, d := range []string{path.Dir(HelperDir), HelperDir} {
		if err := sc.Chmod(d, 0o700); err != nil {
			return fmt.Errorf("host %s: chmod %s: %w", c.Target.Name, d, err)
		}
	}
	if err := c.checkHelperDir(sc); err != nil {
		return err
	}
	tmp := final + ".tmp-" + randomSuffix()
	if err := c.send(sc, tmp, h); err != nil {
		return err
	}
	if err := sc.PosixRename(tmp, final); err != nil {
		return fmt.Errorf("host %s: install helper: %w", c.Target.Name, err)
	}
	c.helper = final
	c.removeOldHelpers(sc, final)
	return nil
}

// checkHelperDir refuses a helper directory that others could write to or that root does not own.
func (c *Conn) checkHelperDir(sc *sftp.Client) error {
	st, err := sc.Stat(HelperDir)
	if err != nil {
		return fmt.Errorf("host %s: %s: %w", c.Target.Name, HelperDir, err)
	}
	fs, ok := st.Sys().(*sftp.FileStat)
	if !ok {
		return fmt.Errorf("host %s: %s: no owner in the SFTP answer", c.Target.Name, HelperDir)
	}
	return c.helperDirOK(fs.UID, st.Mode().Perm())
}

func (c *Conn) helperDirOK(uid uint32, mode os.FileMode) error {
	if uid != 0 || mode != 0o700 {
		return fmt.Errorf("host %s: refusing helper directory %s: want owner root and mode 0700, have uid %d mode %#o", c.Target.Name, HelperDir, uid, mode)
	}
	return nil
}

// remoteFile is a line of `stat -c '%u %a %s %n'`.
type remoteFile struct {
	uid  uint32
	mode os.FileMode
	size int64
}

// parseHelperFacts reads EnsureHelper's command: `uname -m`, then one stat line per file that exists.
func parseHelperFacts(out string) (arch string, files map[string]remoteFile) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	files = map[string]remoteFile{}
	for _, l := range lines[1:] {
		f := strings.SplitN(l, " ", 4)
		if len(f) != 4 {
			continue
		}
		uid, err1 := strconv.ParseUint(f[0], 10, 32)
		mode, err2 := strconv.ParseUint(f[1], 8, 32)
		size, err3 := strconv.ParseInt(f[2], 10, 64)
		if err1 == nil && err2 == nil && err3 == nil {
			files[f[3]] = remoteFile{uid: uint32(uid), mode: os.FileMode(mode), size: size}
		}
	}
	return strings.TrimSpace(lines[0]), files
}

// send writes the helper to name on the host: the compressed bytes over SFTP to name.gz, unpacked
// there by gzip, and checked against the hash. On failure neither file is left behind.
func (c *Conn) send(sc *sftp.Client, name string, h Helper) error {
	gz := name + ".gz"
	err := c.upload(sc, gz, h.Gzip)
	if err == nil {
		var out string
		out, err = c.output(fmt.Sprintf("gzip -dc %[1]s > %[2]s && chmod 0700 %[2]s && rm -f %[1]s && sha256sum %[2]s", gz, name))
		if err != nil {
			err = fmt.Errorf("host %s: unpack helper: %w", c.Target.Name, err)
		} else if got, _, _ := strings.Cut(out, " "); got != h.SHA256 {
			err = fmt.Errorf("host %s: helper upload corrupted: sha256 %s on the host, %s sent", c.Target.Name, got, h.SHA256)
		}
	}
	if err != nil {
		_ = sc.Remove(gz)
		_ = sc.Remove(name)
	}
	return err
}

func (c *Conn) upload(sc *sftp.Client, name string, b []byte) error {
	f, err := sc.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return fmt.Errorf("host %s: upload helper: %w", c.Target.Name, err)
	}
	n, err := f.Write(b)
	c.Uploaded += int64(n)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("host %s: upload helper: %w", c.Target.Name, err)
	}
	return nil
}

// removeOldHelpers deletes helpers of other versions. Uploads in progress (".tmp-") are left alone:
// they may belong to a concurrent run, which removes its own on failure.
func (c *Conn) removeOldHelpers(sc *sftp.Client, keep string) {
	entries, err := sc.ReadDir(HelperDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if p := path.Join(HelperDir, e.Name()); p != keep && strings.HasPrefix(e.Name(), "tunplan-helper-") && !strings.Contains(e.Name(), ".tmp-") {
			_ = sc.Remove(p)
		}
	}
}

// ensureHelperSudo installs the helper as root through `sudo -n`: the SFTP side runs as the login
// user, so the binary goes to a private temporary file first.
func (c *Conn) ensureHelperSudo(h Helper, final string) error {
	if _, err := c.output("sudo -n test -x " + final); err == nil {
		c.helper = final
		return nil
	}
	sc, err := sftp.NewClient(c.client)
	if err != nil {
		return fmt.Errorf("host %s: sftp: %w", c.Target.Name, err)
	}
	defer sc.Close()
	tmp := "/tmp/tunplan-helper-" + randomSuffix()
	if err := c.send(sc, tmp, h); err != nil {
		return err
	}
	defer sc.Remove(tmp)
	script := fmt.Sprintf("sudo -n sh -c 'install -d -o root -m 0700 %s %s && install -o root -m 0700 %s %s'", path.Dir(HelperDir), HelperDir, tmp, final)
	if _, err := c.output(script); err != nil {
		return fmt.Errorf("host %s: install helper with sudo: %w", c.Target.Name, err)
	}
	c.helper = final
	return nil
}

// Run sends one request to the helper on the host and returns its response.
func (c *Conn) Run(req host.Request) (host.Response, error) {
	var resp host.Response
	if c.helper == "" {
		return resp, fmt.Errorf("host %s: helper not installed", c.Target.Name)
	}
	in, err := json.Marshal(req)
	if err != nil {
		return resp, err
	}
	// The login shell expands SSH_CONNECTION before sudo would drop it: the helper refuses changes
	// that would cut this session.
	cmd := c.helper + ` --ssh-connection "$SSH_CONNECTION"`
	if c.Target.Sudo {
		cmd = "sudo -n " + cmd
	}
	out, err := c.exec(cmd, in)
	var missing *ssh.ExitMissingError
	if errors.As(err, &missing) || errors.Is(err, io.EOF) {
		return resp, fmt.Errorf("host %s: the connection was lost before the helper answered; it finishes or restores on its own, and `tunplan diff` reports its outcome", c.Target.Name)
	}
	if err != nil {
		return resp, fmt.Errorf("host %s: helper: %w", c.Target.Name, err)
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		return resp, fmt.Errorf("host %s: helper answered something that is not a response: %w", c.Target.Name, err)
	}
	return resp, nil
}

// output runs a command without input and returns its standard output.
func (c *Conn) output(cmd string) (string, error) {
	out, err := c.exec(cmd, nil)
	return string(out), err
}

func (c *Conn) exec(cmd string, stdin []byte) ([]byte, error) {
	s, err := c.client.NewSession()
	if err != nil {
		return nil, err
	}
	defer s.Close()
	var stdout, stderr bytes.Buffer
	s.Stdin = bytes.NewReader(stdin)
	s.Stdout, s.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	go func() { done <- s.Run(cmd) }()
	select {
	case err = <-done:
	case <-time.After(CommandTimeout):
		s.Close()
		return nil, fmt.Errorf("%s: no answer after %v (the command may still finish on the host; `tunplan diff` shows the outcome)", cmd, CommandTimeout)
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "sudo: a password is required") {
			return nil, fmt.Errorf("sudo needs a password for %s; allow NOPASSWD for the helper or log in as root", c.Target.User)
		}
		var ee *ssh.ExitError
		if msg != "" && errors.As(err, &ee) {
			return nil, fmt.Errorf("%s: %s", cmd, msg)
		}
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	return stdout.Bytes(), nil
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
