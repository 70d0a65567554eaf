//go:build unix

// The in-process SSH server runs the commands it is sent with sh, as a Linux host does, so these
// tests build where sh exists (not on Windows).

package inventory

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tunplan/tunplan/inventory/target"
	"github.com/tunplan/tunplan/modules/protocol"
	"golang.org/x/crypto/ssh"
)

// The transport against an in-process SSH server over a socket pair (no network): each exec
// request runs its command with sh on this machine, as sshd runs it with the login shell.

// shServer serves one SSH connection on c, running exec requests with sh. kill ends the
// connection, as a killed sshd session does.
type shServer struct {
	conn ssh.Conn
}

func (s *shServer) kill() { s.conn.Close() }

func serveSSH(t *testing.T, c net.Conn, srv *shServer, ready chan<- struct{}) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Error(err)
		return
	}
	cfg := &ssh.ServerConfig{NoClientAuth: true}
	cfg.AddHostKey(signer)
	conn, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		t.Error(err)
		return
	}
	srv.conn = conn
	close(ready)
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		go func() {
			for r := range creqs {
				if r.Type != "exec" {
					r.Reply(false, nil)
					continue
				}
				r.Reply(true, nil)
				cmdLen := binary.BigEndian.Uint32(r.Payload)
				cmd := exec.Command("sh", "-c", string(r.Payload[4:4+cmdLen]))
				cmd.Env = append(os.Environ(), "SSH_CONNECTION=198.18.0.1 50000 198.18.0.2 22")
				cmd.Stdout, cmd.Stderr = ch, ch.Stderr()
				// Like sshd, the server does not wait for the client's input to end once the command exited.
				stdin, err := cmd.StdinPipe()
				if err != nil {
					t.Error(err)
					return
				}
				go func() { io.Copy(stdin, ch); stdin.Close() }()
				go func() {
					code := 0
					var ee *exec.ExitError
					if err := cmd.Run(); errors.As(err, &ee) {
						code = ee.ExitCode()
					}
					status := make([]byte, 4)
					binary.BigEndian.PutUint32(status, uint32(code))
					ch.SendRequest("exit-status", false, status)
					ch.Close()
				}()
			}
		}()
	}
}

// dialSH connects a Conn to a new shServer.
func dialSH(t *testing.T) (*Conn, *shServer) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ends [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		if ends[i], err = net.FileConn(f); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	srv := &shServer{}
	ready := make(chan struct{})
	go serveSSH(t, ends[1], srv, ready)
	cfg := &ssh.ClientConfig{User: "root", HostKeyCallback: ssh.InsecureIgnoreHostKey(), Config: ssh.Config{Ciphers: ciphers()}}
	c, chans, reqs, err := ssh.NewClientConn(ends[0], "lvs01", cfg)
	if err != nil {
		t.Fatal(err)
	}
	<-ready
	conn := &Conn{Target: target.Target{Name: "lvs01", User: "root"}, client: ssh.NewClient(c, chans, reqs)}
	t.Cleanup(func() { conn.Close() })
	return conn, srv
}

// echoHelper stands in for the helper: it answers each request line with a response naming the
// request's operation, then (after its input ends) writes a file, as the helper marks its last
// outcome reported after answering.
func echoHelper(done string) string {
	return `echo ` + helperReady + `
while read -r line; do
  op=$(echo "$line" | sed 's/.*"op":"\([a-z]*\)".*/\1/')
  echo "{\"host\":\"$op\",\"changes\":[]}"
done
touch ` + done
}

func TestConnServesRequestsOverOneSession(t *testing.T) {
	c, _ := dialSH(t)
	done := filepath.Join(t.TempDir(), "done")
	if err := c.start("echo motd from a chatty login\n" + echoHelper(done)); err != nil {
		t.Fatal(err)
	}
	for _, op := range []protocol.Op{protocol.OpDiff, protocol.OpApply} {
		resp, err := c.Run(protocol.Request{Op: op, Host: "lvs01"})
		if err != nil || resp.Host != string(op) {
			t.Fatalf("%s: %+v %v", op, resp, err)
		}
	}
	c.Close()
	if _, err := os.Stat(done); err != nil {
		t.Errorf("Close returned before the helper finished: %v", err)
	}
}

func TestConnStartFailures(t *testing.T) {
	cases := []struct {
		name, script, want string
		missing            bool
	}{
		{"no current helper", "echo " + factsHeader + " >&2; echo x86_64 >&2; exit 111", "", true},
		{"sudo wants a password", "echo 'sudo: a password is required' >&2; exit 1", "host lvs01: start helper: sudo needs a password for root; allow NOPASSWD for the helper or log in as root", false},
		{"install failed", "echo 'helper upload corrupted: sha256 ab on the host, cd sent' >&2; exit 112", "host lvs01: start helper: helper upload corrupted: sha256 ab on the host, cd sent", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := dialSH(t)
			err := c.start(tc.script)
			var missing *missingHelper
			switch {
			case tc.missing:
				if !errors.As(err, &missing) || missing.facts != factsHeader+"\nx86_64\n" {
					t.Errorf("got %v, want the facts", err)
				}
			case err == nil || err.Error() != tc.want:
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestConnRunFailures(t *testing.T) {
	t.Run("helper ends without answering", func(t *testing.T) {
		c, _ := dialSH(t)
		if err := c.start("echo " + helperReady + "; read -r line; echo 'helper: out of memory' >&2; exit 5"); err != nil {
			t.Fatal(err)
		}
		_, err := c.Run(protocol.Request{Op: protocol.OpApply})
		if err == nil || err.Error() != "host lvs01: helper: helper: out of memory" {
			t.Errorf("got %v", err)
		}
		if _, err := c.Run(protocol.Request{Op: protocol.OpApply}); err == nil || !strings.Contains(err.Error(), "helper not started") {
			t.Errorf("a second request after the helper ended: %v", err)
		}
	})
	t.Run("connection lost", func(t *testing.T) {
		c, srv := dialSH(t)
		if err := c.start("echo " + helperReady + "; read -r line; sleep 2"); err != nil {
			t.Fatal(err)
		}
		go func() { time.Sleep(200 * time.Millisecond); srv.kill() }()
		_, err := c.Run(protocol.Request{Op: protocol.OpApply})
		if err == nil || !strings.Contains(err.Error(), "host lvs01: the connection was lost before the helper answered") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("no answer in time", func(t *testing.T) {
		defer func(d time.Duration) { CommandTimeout = d }(CommandTimeout)
		CommandTimeout = 300 * time.Millisecond
		c, _ := dialSH(t)
		if err := c.start("echo " + helperReady + "; read -r line; sleep 2"); err != nil {
			t.Fatal(err)
		}
		_, err := c.Run(protocol.Request{Op: protocol.OpApply})
		if err == nil || !strings.Contains(err.Error(), "no answer after 300ms") {
			t.Errorf("got %v", err)
		}
	})
}
