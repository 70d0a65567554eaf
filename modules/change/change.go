// Package change holds the one shape every module uses to describe a difference between the state a
// host has and the state the plan wants: a Change with an Action, the object's Address, and its
// Before and After values (after Terraform's internal/plans).
package change

import "fmt"

// Action says what applying a Change does. Its value is the symbol the diff rendering shows.
type Action rune

const (
	NoOp   Action = 0
	Create Action = '+'
	Update Action = '~'
	Delete Action = '-'
)

func (a Action) String() string {
	switch a {
	case Create:
		return "create"
	case Update:
		return "update"
	case Delete:
		return "delete"
	}
	return "no-op"
}

// MarshalText makes actions readable in JSON ("create", "update", "delete").
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText is the inverse of MarshalText for the actions a change can have; anything else
// (a newer helper's action, "no-op") is an error rather than a change that silently does nothing.
func (a *Action) UnmarshalText(b []byte) error {
	for _, k := range []Action{Create, Update, Delete} {
		if k.String() == string(b) {
			*a = k
			return nil
		}
	}
	return fmt.Errorf("unknown change action %q", b)
}

// Change is one difference on one object.
//
//	Action  Before            After
//	Create  "" (absent)       the new value
//	Update  the live value    the wanted value
//	Delete  the live value    "" (absent)
//
// Before and After are one-line, human-readable renderings of the object (for example
// "weight=1 fwd=tunnel" or "0"); the module that made the Change knows how to apply it.
type Change struct {
	Module  string `json:"module"`  // "kmod", "sysctl", "tunnel", "ipvs"
	Address string `json:"address"` // stable, sortable identity: "sysctl net.ipv4.ip_forward", "ipvs tcp/198.18.48.180:80 -> 198.18.1.183:80"
	Action  Action `json:"action"`
	Before  string `json:"before,omitempty"`
	After   string `json:"after,omitempty"`
}

// Shown is the value a rendering shows for the change: the new value of a creation, the old one of
// a removal, "before => after" for an update.
func (c Change) Shown() string {
	switch c.Action {
	case Create:
		return c.After
	case Delete:
		return c.Before
	}
	return c.Before + " => " + c.After
}

// Step is a Change together with the function that makes it on the host. Modules build steps from
// desired and current state without touching the host; the engine decides which steps run.
//
// A module that pipelines its writes (IPVS) makes Do queue the request and sets Flush, which waits
// until every queued request has been answered and returns the first error. The engine flushes
// before a step of another kind runs, before it reads facts again, and at the end.
type Step struct {
	Change
	Do    func() error
	Flush func() error
}

// Changes lists the changes of steps, in order.
func Changes(steps []Step) []Change {
	out := make([]Change, 0, len(steps))
	for _, s := range steps {
		out = append(out, s.Change)
	}
	return out
}
