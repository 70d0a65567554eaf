package plans

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/tunplan/tunplan/inventory/target"
)

var (
	sshAttrs = []hcl.AttributeSchema{
		{Name: "user"}, {Name: "port"}, {Name: "identity_file"}, {Name: "known_hosts"}, {Name: "sudo"}, {Name: "jump"},
	}
	defaultSSHSchema = &hcl.BodySchema{Attributes: sshAttrs}
	hostSSHSchema    = &hcl.BodySchema{Attributes: append([]hcl.AttributeSchema{{Name: "host"}}, sshAttrs...)}
)

// sshSpec is one ssh block; nil fields were not given.
type sshSpec struct {
	host, user, knownHosts, jump *string
	port                         *int
	identity                     []string
	identitySet                  bool
	sudo                         *bool
	knownHostsRange              hcl.Range // of the known_hosts value, when given
}

func (l *loader) sshSpec(b *hcl.Block, schema *hcl.BodySchema) sshSpec {
	var s sshSpec
	c, d := b.Body.Content(schema)
	l.diags = append(l.diags, d...)
	if a := c.Attributes["host"]; a != nil {
		if v, ok := l.str(a); ok {
			if v == "" {
				l.errorf(a.Expr.Range(), "Invalid SSH host", "ssh host must be an IP address or a DNS name; remove it to use the host's address.")
			}
			s.host = &v
		}
	}
	if a := c.Attributes["user"]; a != nil {
		if v, ok := l.str(a); ok {
			if v == "" {
				l.errorf(a.Expr.Range(), "Invalid SSH user", "user must not be empty; remove it to log in as root.")
			}
			s.user = &v
		}
	}
	if a := c.Attributes["port"]; a != nil {
		if v, ok := l.intIn(a, 1, 65535, "SSH port", "a TCP port from 1 to 65535 (default 22)"); ok {
			n := int(v)
			s.port = &n
		}
	}
	if a := c.Attributes["identity_file"]; a != nil {
		if v, _, ok := l.strList(a); ok {
			s.identitySet = true
			for _, f := range v {
				s.identity = append(s.identity, target.ExpandHome(f))
			}
		}
	}
	if a := c.Attributes["known_hosts"]; a != nil {
		if v, ok := l.str(a); ok {
			v = target.ExpandHome(v)
			s.knownHosts = &v
			s.knownHostsRange = a.Expr.Range()
		}
	}
	if a := c.Attributes["sudo"]; a != nil {
		if v, ok := l.boolean(a); ok {
			s.sudo = &v
		}
	}
	if a := c.Attributes["jump"]; a != nil {
		if v, ok := l.str(a); ok {
			if _, _, _, err := ParseJump(v); err != nil {
				l.errorf(a.Expr.Range(), "Invalid jump host", "jump %q: %v. Write jump = \"[user@]host[:port]\", as OpenSSH's ProxyJump.", v, err)
			} else {
				s.jump = &v
			}
		}
	}
	return s
}

// ParseJump reads a bastion as OpenSSH's ProxyJump writes it, "[user@]host[:port]" (port 22 by
// default; an IPv6 host with a port in brackets).
func ParseJump(s string) (user, host string, port int, err error) {
	if i := strings.LastIndex(s, "@"); i >= 0 {
		user, s = s[:i], s[i+1:]
	}
	host, port = s, 22
	if h, p, e := splitHostPort(s); e == nil {
		host = h
		if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
			return "", "", 0, fmt.Errorf("invalid port %q", p)
		}
	}
	if host == "" {
		return "", "", 0, errors.New("no host")
	}
	return user, host, port, nil
}

func splitHostPort(s string) (string, string, error) {
	if strings.HasPrefix(s, "[") {
		if i := strings.Index(s, "]:"); i > 0 {
			return s[1:i], s[i+2:], nil
		}
		return "", "", fmt.Errorf("no port")
	}
	if strings.Count(s, ":") == 1 {
		i := strings.Index(s, ":")
		return s[:i], s[i+1:], nil
	}
	return "", "", fmt.Errorf("no port")
}

func mergeSSH(def, over sshSpec) sshSpec {
	s := def
	if over.host != nil {
		s.host = over.host
	}
	if over.user != nil {
		s.user = over.user
	}
	if over.port != nil {
		s.port = over.port
	}
	if over.identitySet {
		s.identity, s.identitySet = over.identity, true
	}
	if over.knownHosts != nil {
		s.knownHosts, s.knownHostsRange = over.knownHosts, over.knownHostsRange
	}
	if over.sudo != nil {
		s.sudo = over.sudo
	}
	if over.jump != nil {
		s.jump = over.jump
	}
	return s
}

// knownHosts warns about every known_hosts file that the hosts' SSH targets, or their jump hosts,
// check host keys against and that does not exist: tunplan could not verify those hosts and would
// refuse to connect. One warning per file, at the known_hosts attribute of the first host that
// uses it (its host block when the file is the default).
func (l *loader) knownHosts(p *Plan) {
	type scan struct {
		addr string
		port int
	}
	type use struct {
		subject hcl.Range
		hosts   []string // in declaration order
		scans   []scan   // distinct SSH addresses to scan, in declaration order
		seen    map[scan]bool
		jumped  bool // some of them are reached through a jump host
	}
	var paths []string
	uses := map[string]*use{}
	missing := map[string]bool{}
	for _, h := range p.declOrderHosts() {
		targets := []target.Target{h.SSH}
		if h.SSH.Jump != nil {
			targets = append(targets, *h.SSH.Jump)
		}
		for i, t := range targets {
			path := t.KnownHosts
			if path == "" {
				path = target.ExpandHome("~/.ssh/known_hosts") // what inventory.Dial reads then
			}
			gone, checked := missing[path]
			if !checked {
				_, err := os.Stat(path)
				gone = errors.Is(err, fs.ErrNotExist)
				missing[path] = gone
			}
			if !gone || t.Address == "" {
				continue
			}
			u := uses[path]
			if u == nil {
				u = &use{subject: h.DeclRange, seen: map[scan]bool{}}
				if h.ranges.knownHosts != (hcl.Range{}) {
					u.subject = h.ranges.knownHosts
				}
				uses[path] = u
				paths = append(paths, path)
			}
			if len(u.hosts) == 0 || u.hosts[len(u.hosts)-1] != h.Name { // a host and its jump host come together
				u.hosts = append(u.hosts, h.Name)
			}
			if s := (scan{t.Address, t.Port}); !u.seen[s] {
				u.seen[s] = true
				u.scans = append(u.scans, s)
				u.jumped = u.jumped || i == 0 && h.SSH.Jump != nil
			}
		}
	}
	const few = 4
	for _, path := range paths {
		u := uses[path]
		var cmds []string
		for _, s := range u.scans[:min(len(u.scans), few)] {
			opt := ""
			if s.port != 22 {
				opt = fmt.Sprintf(" -p %d", s.port)
			}
			cmds = append(cmds, fmt.Sprintf("  ssh-keyscan -H%s %s >> %s", opt, shellQuote(s.addr), shellQuote(path)))
		}
		if n := len(u.scans) - few; n > 0 {
			cmds = append(cmds, fmt.Sprintf("  … and likewise for the %d other SSH addresses of these hosts", n))
		}
		note := ""
		if u.jumped {
			note = "\n\nA host reached through a jump host may answer only there: run its ssh-keyscan on the jump host."
		}
		l.warnf(u.subject, "known_hosts file not found", "%s does not exist, so tunplan cannot verify the host keys of %s and will refuse to connect. Fix the path, or add the hosts' keys (and compare their fingerprints with the hosts' own):\n\n%s%s",
			path, andList(u.hosts, few), strings.Join(cmds, "\n"), note)
	}
}

// andList is "a, b and c", naming at most the first few and counting the others.
func andList(names []string, few int) string {
	switch {
	case len(names) > few:
		return fmt.Sprintf("%s and %d more", strings.Join(names[:few], ", "), len(names)-few)
	case len(names) > 1:
		return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
	default:
		return strings.Join(names, "")
	}
}

// shellQuote quotes s for a POSIX shell, unless it needs no quoting.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
