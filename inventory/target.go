// Package inventory reaches the hosts of a plan: SSH connections verified against known_hosts, the
// helper uploaded over SFTP, and the helper run with a JSON request.
package inventory

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
