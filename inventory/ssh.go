// Package inventory reaches the hosts of a plan: SSH connections verified against known_hosts, the
// helper uploaded over SFTP, and the helper run with a JSON request.
package inventory

import (
	"crypto/fips140"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/tunplan/tunplan/inventory/target"
)

// DialTimeout bounds the TCP connect and the SSH handshake to one host.
var DialTimeout = 15 * time.Second

// CommandTimeout bounds one remote command (a helper run included).
var CommandTimeout = 5 * time.Minute

// Conn is the one SSH connection tunplan keeps to a host for a whole run.
type Conn struct {
	Target   target.Target
	client   *ssh.Client
	jump     *Conn       // the bastion's connection, closed with this one
	uploaded int64       // helper bytes sent to this host in this run
	proc     *helperProc // the helper serving this run's requests, once started
}

// Uploaded counts the helper bytes sent to this host in this run (0 when it had the current helper).
func (c *Conn) Uploaded() int64 { return c.uploaded }

// Dial connects to t, verifying the host key against t.KnownHosts. An unknown or changed key is
// refused with the fingerprint the host presented.
func Dial(t target.Target) (*Conn, error) {
	cfg, err := clientConfig(t)
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", t.Name, err)
	}
	addr := net.JoinHostPort(t.Address, strconv.Itoa(t.Port))
	var jump *Conn
	dial := func() (net.Conn, error) { return net.DialTimeout("tcp", addr, DialTimeout) }
	if t.Jump != nil {
		if jump, err = Dial(*t.Jump); err != nil {
			return nil, fmt.Errorf("host %s: through bastion: %w", t.Name, err)
		}
		dial = func() (net.Conn, error) { return jump.client.Dial("tcp", addr) }
	}
	nc, err := dial()
	if err != nil {
		closeJump(jump)
		return nil, fmt.Errorf("host %s: connect %s: %w", t.Name, addr, err)
	}
	// The deadline covers the handshake only; it is cleared once the session is up.
	_ = nc.SetDeadline(time.Now().Add(DialTimeout))
	c, chans, reqs, err := ssh.NewClientConn(nc, addr, cfg)
	if err != nil {
		nc.Close()
		closeJump(jump)
		return nil, fmt.Errorf("host %s: ssh %s@%s: %w", t.Name, t.User, addr, explainHandshake(err))
	}
	_ = nc.SetDeadline(time.Time{})
	return &Conn{Target: t, client: ssh.NewClient(c, chans, reqs), jump: jump}, nil
}

// Close ends the helper and the connection (and the bastion's).
func (c *Conn) Close() error {
	c.stopHelper()
	err := c.client.Close()
	closeJump(c.jump)
	return err
}

func closeJump(j *Conn) {
	if j != nil {
		j.Close()
	}
}

func clientConfig(t target.Target) (*ssh.ClientConfig, error) {
	khPath := target.ExpandHome(t.KnownHosts)
	if khPath == "" {
		khPath = target.ExpandHome("~/.ssh/known_hosts")
	}
	hostKeys, err := knownhosts.New(khPath)
	if err != nil {
		return nil, fmt.Errorf("known_hosts: %w", err)
	}
	var auths []ssh.AuthMethod
	var signers []ssh.Signer
	for _, f := range t.IdentityFile {
		pem, err := os.ReadFile(target.ExpandHome(f))
		if err != nil {
			return nil, fmt.Errorf("identity file: %w", err)
		}
		s, err := ssh.ParsePrivateKey(pem)
		if err != nil {
			return nil, fmt.Errorf("identity file %s: %w", f, err)
		}
		signers = append(signers, s)
	}
	if len(signers) > 0 {
		auths = append(auths, ssh.PublicKeys(signers...))
	}
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		if ac, err := net.Dial("unix", sock); err == nil {
			auths = append(auths, ssh.PublicKeysCallback(agent.NewClient(ac).Signers))
		}
	}
	if len(auths) == 0 {
		return nil, errors.New("no SSH key: set identity_file in the plan or start ssh-agent")
	}
	return &ssh.ClientConfig{
		Config:            ssh.Config{Ciphers: ciphers()},
		User:              t.User,
		Auth:              auths,
		HostKeyCallback:   verifyHostKey(hostKeys, khPath),
		HostKeyAlgorithms: knownAlgorithms(hostKeys, t),
		Timeout:           DialTimeout,
	}, nil
}

// ciphers puts chacha20-poly1305 first, as OpenSSH's client does, then Go's order (AES-GCM first).
// On CPUs without AES instructions, and under emulation, AES-GCM costs about twice as much CPU
// on both ends: measured in the lab VM (qemu TCG) uploading the helper. FIPS 140 mode keeps Go's
// list, which has no ChaCha20.
func ciphers() []string {
	if fips140.Enabled() {
		return nil
	}
	out := []string{ssh.CipherChaCha20Poly1305}
	for _, c := range ssh.SupportedAlgorithms().Ciphers {
		if c != ssh.CipherChaCha20Poly1305 {
			out = append(out, c)
		}
	}
	return out
}

// verifyHostKey turns knownhosts' errors into messages that say what to do.
func verifyHostKey(check ssh.HostKeyCallback, file string) ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := check(hostname, remote, key)
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) {
			fp := ssh.FingerprintSHA256(key)
			if len(ke.Want) == 0 {
				return fmt.Errorf("host key unknown: %s %s is not in %s (check it, then add it, e.g. with ssh-keyscan)", key.Type(), fp, file)
			}
			return fmt.Errorf("host key CHANGED: the host presented %s %s, %s:%d expects another key; refusing to connect", key.Type(), fp, ke.Want[0].Filename, ke.Want[0].Line)
		}
		return err
	}
}

// knownAlgorithms asks the server for the key types known_hosts holds for it, so a host with several
// keys presents the one that can be verified.
func knownAlgorithms(check ssh.HostKeyCallback, t target.Target) []string {
	addr := &net.TCPAddr{IP: net.ParseIP(t.Address), Port: t.Port}
	err := check(net.JoinHostPort(t.Address, strconv.Itoa(t.Port)), addr, probeKey{})
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) {
		return nil
	}
	var algs []string
	for _, k := range ke.Want {
		algs = append(algs, algorithmsFor(k.Key.Type())...)
	}
	return algs
}

func algorithmsFor(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// probeKey is a key no known_hosts line matches: checking it lists the keys that are known.
type probeKey struct{}

func (probeKey) Type() string                        { return "tunplan-probe" }
func (probeKey) Marshal() []byte                     { return []byte("tunplan-probe") }
func (probeKey) Verify([]byte, *ssh.Signature) error { return errors.New("probe") }

func explainHandshake(err error) error {
	if strings.Contains(err.Error(), "unable to authenticate") {
		return fmt.Errorf("authentication refused (wrong user or key not authorized): %w", err)
	}
	return err
}
