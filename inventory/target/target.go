// Package target is how to reach a host over SSH, as plain data: the plan fills it in and inventory
// dials it. It links no SSH code, so the plan (plans/) stays data and connecting stays with
// orchestration.
package target

import (
	"os"
	"path/filepath"
	"strings"
)

// Target is how to reach one host over SSH, as the plan's host block (and its defaults) describe it.
type Target struct {
	Name         string   // the plan's name for the host, used in every message
	Address      string   // SSH address (IP or DNS name)
	Port         int      // default 22
	User         string   // default "root"
	IdentityFile []string // private key files; the ssh-agent (SSH_AUTH_SOCK) is used too when set
	KnownHosts   string   // known_hosts file; default ~/.ssh/known_hosts
	Sudo         bool     // run the helper with `sudo -n` (user is not root)
	Jump         *Target  // bastion to connect through (OpenSSH's ProxyJump); nil: connect directly
}

// ExpandHome expands a leading "~" or "~/" to the user's home directory, as the ssh client does
// for paths in its configuration.
func ExpandHome(p string) string {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return p
	}
	return filepath.Join(home, strings.TrimPrefix(p, "~"))
}
