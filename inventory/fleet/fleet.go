// Package fleet runs a tunplan operation across the hosts of a plan: it connects to them, sends the
// diff that opens an apply (and claims the hosts for the run), the apply's phases in their order
// (realservers add, then directors, then realservers remove), --atomic's undo, the history reads,
// and the rollback, choosing the run a rollback undoes. It prints nothing: every host keeps the
// result of every phase, in order, for the CLI to render.
package fleet

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/user"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/tunplan/tunplan/inventory/target"
	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/protocol"
)

// Session is one host reached for a run: the boundary that tests replace with a fake.
type Session interface {
	Run(protocol.Request) (protocol.Response, error)
	Close() error
}

// Uploader is a Session that tells how many helper bytes connecting sent to its host.
type Uploader interface {
	Uploaded() int64
}

// Connector dials a host and makes its helper ready.
type Connector func(target.Target) (Session, error)

// Host is one host of a run, as the plan describes it.
type Host struct {
	Target  target.Target
	Roles   protocol.Roles
	Desired protocol.State // what the plan wants there
	Address netip.Addr     // the data-plane IPv4 address: a director's probes' source, a realserver's RIP
	// UDPProbes are what a director's verify sends to the destinations of its UDP services, by
	// service (the plan's probe blocks); a UDP service without one is not probed.
	UDPProbes map[protocol.Key]protocol.Payload
}

// Phase names the step of a run a result belongs to.
type Phase string

const (
	Connect           Phase = "connect"
	Diff              Phase = "diff"               // what an apply would change (the claiming diff of an apply too)
	RealserversAdd    Phase = "realservers-add"    // realservers gain what is new, before directors send them traffic
	Directors         Phase = "directors"          // directors make every change
	RealserversRemove Phase = "realservers-remove" // realservers lose what directors no longer use
	Undo              Phase = "undo"               // --atomic: hosts this run changed go back to their previous generation
	History           Phase = "history"            // the generations recorded on the host
	Rollback          Phase = "rollback"
	Inspect           Phase = "inspect" // tunplan import: what the host has (its inventory)
)

// applyPhases are the phases of an apply, in order, with the part of the changes each sends.
var applyPhases = []struct {
	phase Phase
	part  protocol.Phase
}{{RealserversAdd, protocol.PhaseAdd}, {Directors, protocol.PhaseAll}, {RealserversRemove, protocol.PhaseRemove}}

// Result is one host's answer to one phase.
type Result struct {
	Phase    Phase
	Response protocol.Response
	Err      error // could not connect, lost the connection, or the helper's own error
}

// HostRun is one host's part in a run: its session and the result of every phase it took part in.
type HostRun struct {
	Host
	Uploaded int64 // helper bytes connecting sent to the host; 0 when it had the current helper
	Results  []Result
	sess     Session
}

// Name is the plan's name for the host.
func (h *HostRun) Name() string { return h.Target.Name }

// Err is the first failure of the host in this run; a host with an error takes no further phase.
func (h *HostRun) Err() error {
	for _, r := range h.Results {
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}

// Result is the host's result of phase p, if it took part in it.
func (h *HostRun) Result(p Phase) (Result, bool) {
	for i := len(h.Results) - 1; i >= 0; i-- {
		if h.Results[i].Phase == p {
			return h.Results[i], true
		}
	}
	return Result{}, false
}

// Changes are the changes the host reported in phase p (none when it did not take part).
func (h *HostRun) Changes(p Phase) []change.Change {
	r, _ := h.Result(p)
	return r.Response.Changes
}

// Applied is the generation the run's apply phases left current on the host, and whether any of
// them changed it.
func (h *HostRun) Applied() (generation int, changed bool) {
	for _, r := range h.Results {
		for _, ap := range applyPhases {
			if r.Phase == ap.phase && r.Err == nil && r.Response.Outcome == protocol.Applied {
				generation, changed = r.Response.Generation, true
			}
		}
	}
	return generation, changed
}

// Outcome is how the host's latest apply, undo or rollback of this run ended.
func (h *HostRun) Outcome() protocol.Outcome {
	for i := len(h.Results) - 1; i >= 0; i-- {
		if o := h.Results[i].Response.Outcome; o != protocol.OutcomeNone {
			return o
		}
	}
	return protocol.OutcomeNone
}

// Warnings are the distinct warnings of every phase, in order.
func (h *HostRun) Warnings() []string {
	var out []string
	for _, r := range h.Results {
		for _, w := range r.Response.Warnings {
			if !slices.Contains(out, w) {
				out = append(out, w)
			}
		}
	}
	return out
}

func (h *HostRun) live() bool { return h.sess != nil && h.Err() == nil }

// Options set how a run works its hosts.
type Options struct {
	Parallel int           // hosts worked on at once (at least 1)
	LockWait time.Duration // how long applies and rollbacks wait for another run's lock on a host
}

// Run is one tunplan operation across hosts.
type Run struct {
	ID    string // recorded in the generations it makes
	Actor string // user@machine, recorded likewise
	Hosts []*HostRun
	opts  Options
}

// Open connects to every host, at most opts.Parallel at a time. A host that cannot be reached has
// a failed Connect result and takes no further phase. Close ends the sessions.
func Open(hosts []Host, dial Connector, opts Options) *Run {
	r := &Run{ID: newRunID(), Actor: actor(), opts: opts}
	for _, h := range hosts {
		r.Hosts = append(r.Hosts, &HostRun{Host: h})
	}
	sort.Slice(r.Hosts, func(i, j int) bool { return r.Hosts[i].Name() < r.Hosts[j].Name() })
	r.each(r.Hosts, func(h *HostRun) {
		s, err := dial(h.Target)
		if err != nil {
			h.Results = append(h.Results, Result{Phase: Connect, Err: err})
			return
		}
		h.sess = s
		if u, ok := s.(Uploader); ok {
			h.Uploaded = u.Uploaded()
		}
	})
	return r
}

// Close ends every session.
func (r *Run) Close() {
	for _, h := range r.Hosts {
		if h.sess != nil {
			h.sess.Close()
		}
	}
}

// Failed lists the hosts with an error, by name.
func (r *Run) Failed() []*HostRun {
	var out []*HostRun
	for _, h := range r.Hosts {
		if h.Err() != nil {
			out = append(out, h)
		}
	}
	return out
}

// each calls fn for every host in parallel (bounded) and waits.
func (r *Run) each(hosts []*HostRun, fn func(*HostRun)) {
	sem := make(chan struct{}, max(r.opts.Parallel, 1))
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(h)
		}()
	}
	wg.Wait()
}

// request sends one request to each of hosts that is connected and has no error yet, and records
// the result under phase p.
func (r *Run) request(hosts []*HostRun, p Phase, build func(*HostRun) protocol.Request) {
	var live []*HostRun
	for _, h := range hosts {
		if h.live() {
			live = append(live, h)
		}
	}
	r.send(live, p, build)
}

// send sends one request to each of hosts, which must be connected, and records the result under
// phase p.
func (r *Run) send(hosts []*HostRun, p Phase, build func(*HostRun) protocol.Request) {
	r.each(hosts, func(h *HostRun) {
		resp, err := h.sess.Run(build(h))
		if err == nil && resp.Error != "" {
			err = fmt.Errorf("host %s: %s", h.Name(), resp.Error)
		}
		h.Results = append(h.Results, Result{Phase: p, Response: resp, Err: err})
	})
}

func (r *Run) lockWaitMS() int64 { return r.opts.LockWait.Milliseconds() }

// Diff asks every host what applying its desired state would change. With claim, it is the diff
// that opens an apply: it also locks each host and claims it for this run's connection (held until
// the run ends). The first host by name goes alone, so of two runs of one plan started together
// the one that claims it first gets every host and the other is turned away there. A run turned
// away claims no other host: their diffs are plain.
func (r *Run) Diff(claim bool) {
	build := func(h *HostRun) protocol.Request {
		req := protocol.Request{Op: protocol.OpDiff, Host: h.Name(), Desired: h.Desired}
		if claim {
			req.Claim, req.RunID, req.Actor, req.LockWaitMS = true, r.ID, r.Actor, r.lockWaitMS()
		}
		return req
	}
	if !claim || len(r.Hosts) == 0 {
		r.request(r.Hosts, Diff, build)
		return
	}
	r.request(r.Hosts[:1], Diff, build)
	claim = r.Hosts[0].Err() == nil
	r.request(r.Hosts[1:], Diff, build)
}

// Pending counts the changes the diff found.
func (r *Run) Pending() int {
	n := 0
	for _, h := range r.Hosts {
		n += len(h.Changes(Diff))
	}
	return n
}

// Apply converges the hosts after Diff, in three phases so traffic never reaches a realserver that
// would drop it: realservers add, then directors (every change), then realservers remove. Each
// phase goes only to the hosts with changes of its kind, and a phase runs only when every earlier
// one succeeded. With atomic, a failure rolls back every host the run changed (the Undo phase).
// It reports whether every phase succeeded.
func (r *Run) Apply(atomic bool) bool {
	members := map[Phase][]*HostRun{}
	for _, h := range r.Hosts {
		adds, removes := 0, 0
		for _, c := range h.Changes(Diff) {
			if c.Action == change.Delete {
				removes++
			} else {
				adds++
			}
		}
		switch {
		case h.Roles.Has(protocol.Director):
			if adds+removes > 0 {
				members[Directors] = append(members[Directors], h)
			}
		default:
			if adds > 0 {
				members[RealserversAdd] = append(members[RealserversAdd], h)
			}
			if removes > 0 {
				members[RealserversRemove] = append(members[RealserversRemove], h)
			}
		}
	}
	for _, ap := range applyPhases {
		r.request(members[ap.phase], ap.phase, func(h *HostRun) protocol.Request {
			return protocol.Request{Op: protocol.OpApply, Host: h.Name(), Desired: h.Desired, RunID: r.ID, Phase: ap.part, Actor: r.Actor, LockWaitMS: r.lockWaitMS()}
		})
		if len(r.Failed()) > 0 {
			if atomic {
				r.undo()
			}
			return false
		}
	}
	return true
}

// undo rolls back every host this run changed to the generation it had before the run. A host
// whose only failure is in a verify (a director that could not probe) is rolled back too.
func (r *Run) undo() {
	var changed []*HostRun
	for _, h := range r.Hosts {
		if _, ok := h.Applied(); ok && h.sess != nil && h.ErrBeforeVerify() == nil {
			changed = append(changed, h)
		}
	}
	r.send(changed, Undo, func(h *HostRun) protocol.Request {
		return protocol.Request{Op: protocol.OpRollback, Host: h.Name(), RunID: r.ID + "-undo", Actor: r.Actor, LockWaitMS: r.lockWaitMS()}
	})
}

func newRunID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// actor names who runs tunplan, for the generations recorded on hosts.
func actor() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	h, _ := os.Hostname()
	return name + "@" + h
}
