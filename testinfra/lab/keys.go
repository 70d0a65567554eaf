package lab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// prepareKeys makes the run's SSH material in dir, natively before the VM boots (key generation
// under emulation is slow): the client key, a host key and authorized_keys per host, known_hosts.
func prepareKeys(dir string) error {
	keygen := func(path string) error {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tunplan-lab", "-f", path).CombinedOutput(); err != nil {
			return fmt.Errorf("lab: ssh-keygen %s: %w: %s", path, err, out)
		}
		return nil
	}
	client := filepath.Join(dir, filepath.Base(SSHKey()))
	if err := keygen(client); err != nil {
		return err
	}
	pub, err := os.ReadFile(client + ".pub")
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	var known strings.Builder
	for _, h := range hosts {
		hdir := filepath.Join(dir, "hosts", h.Name)
		// Readable by all, as ~/.ssh would be: sshd reads authorized_keys as the user logging in,
		// and the sudo tests log in as a user that is not root.
		if err := os.MkdirAll(hdir, 0o755); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
		if err := keygen(filepath.Join(hdir, "ssh_host_ed25519_key")); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(hdir, "authorized_keys"), pub, 0o644); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
		hostPub, err := os.ReadFile(filepath.Join(hdir, "ssh_host_ed25519_key.pub"))
		if err != nil {
			return fmt.Errorf("lab: %w", err)
		}
		f := strings.Fields(string(hostPub))
		fmt.Fprintf(&known, "%s %s %s\n", h.Mgmt, f[0], f[1])
	}
	return os.WriteFile(filepath.Join(dir, filepath.Base(KnownHosts())), []byte(known.String()), 0o644)
}

// hostKeyDir is where, inside the VM, a host's sshd finds its key and authorized_keys.
func hostKeyDir(host string) string { return filepath.Join(runDir, "hosts", host) }
