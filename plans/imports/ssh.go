package imports

import (
	"github.com/zclconf/go-cty/cty"

	"github.com/tunplan/tunplan/inventory/target"
)

// tunplan's SSH defaults, which a plan's ssh block need not say.
const (
	DefaultUser       = "root"
	DefaultPort       = 22
	DefaultKnownHosts = "~/.ssh/known_hosts"
)

// SSH is how the hosts were reached, and what the plan's ssh block says: every field as given
// (DefaultUser, DefaultPort and DefaultKnownHosts when not), paths unexpanded.
type SSH struct {
	User          string
	Port          int
	IdentityFiles []string
	KnownHosts    string
	Sudo          bool
	Jump          string // "[user@]host[:port]", as OpenSSH's ProxyJump; "": none
}

// Target is how the plan reaches the host name at SSH address addr, as plans.Load makes it of the
// ssh block (~ expanded), so that import reads the hosts as applying the plan will reach them. jump
// is Jump parsed (its Address, Port and User), nil without one; it gets the host's keys and
// known_hosts, and the host's user unless it names one.
func (s SSH) Target(name, addr string, jump *target.Target) target.Target {
	t := target.Target{Name: name, Address: addr, Port: s.Port, User: s.User, KnownHosts: target.ExpandHome(s.KnownHosts), Sudo: s.Sudo}
	for _, f := range s.IdentityFiles {
		t.IdentityFile = append(t.IdentityFile, target.ExpandHome(f))
	}
	if jump != nil {
		j := *jump
		j.Name = name + " (jump " + s.Jump + ")"
		if j.User == "" {
			j.User = s.User
		}
		j.IdentityFile, j.KnownHosts = t.IdentityFile, t.KnownHosts
		t.Jump = &j
	}
	return t
}

// attribute is one attribute of the plan's ssh block.
type attribute struct {
	name  string
	value cty.Value
}

// attributes are the plan's ssh block: the settings that are not tunplan's defaults, in the order
// the README lists them. None: no block.
func (s SSH) attributes() []attribute {
	var out []attribute
	if s.User != DefaultUser {
		out = append(out, attribute{"user", cty.StringVal(s.User)})
	}
	if s.Port != DefaultPort {
		out = append(out, attribute{"port", cty.NumberIntVal(int64(s.Port))})
	}
	switch len(s.IdentityFiles) {
	case 0:
	case 1:
		out = append(out, attribute{"identity_file", cty.StringVal(s.IdentityFiles[0])})
	default:
		out = append(out, attribute{"identity_file", stringList(s.IdentityFiles)})
	}
	if target.ExpandHome(s.KnownHosts) != target.ExpandHome(DefaultKnownHosts) {
		out = append(out, attribute{"known_hosts", cty.StringVal(s.KnownHosts)})
	}
	if s.Sudo {
		out = append(out, attribute{"sudo", cty.True})
	}
	if s.Jump != "" {
		out = append(out, attribute{"jump", cty.StringVal(s.Jump)})
	}
	return out
}
