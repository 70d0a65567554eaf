package cli

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tunplan/tunplan/cmd/tunplan/helperbin"
	"github.com/tunplan/tunplan/inventory"
	"github.com/tunplan/tunplan/modules/host"
)

// Session is one host reached for a run: the boundary that tests replace with a fake.
type Session interface {
	Run(host.Request) (host.Response, error)
	Close() error
}

// Connector dials a host and makes its helper ready.
type Connector func(inventory.Target) (Session, error)

// SSH is the real Connector: one SSH connection per host per run, in which one helper process
// serves the run's requests (uploaded first when the host lacks the current one).
func SSH(t inventory.Target) (Session, error) {
	c, err := inventory.Dial(t)
	if err != nil {
		return nil, err
	}
	if err := c.StartHelper(helperbin.Embedded{}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// member is one host of the run with what the plan wants there and what it answered last.
type member struct {
	target  inventory.Target
	desired host.State
	sess    Session
	resp    host.Response
	err     error
	// uploaded is how many helper bytes connecting sent to the host (0 when it had the helper).
	uploaded int64
}

func (m *member) isDirector() bool { return strings.Contains(m.target.Role, "director") }

// fleet runs requests on many hosts at once, at most parallel at a time.
type fleet struct {
	members  []*member
	parallel int
}

// each calls fn for every member in parallel (bounded) and waits.
func (f *fleet) each(members []*member, fn func(*member)) {
	n := f.parallel
	if n < 1 {
		n = 1
	}
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for _, m := range members {
		wg.Add(1)
		sem <- struct{}{}
		go func(m *member) {
			defer func() { <-sem; wg.Done() }()
			fn(m)
		}(m)
	}
	wg.Wait()
}

// connect reaches every member; members that fail keep their error.
func (f *fleet) connect(dial Connector) {
	f.each(f.members, func(m *member) {
		m.sess, m.err = dial(m.target)
		if c, ok := m.sess.(*inventory.Conn); ok {
			m.uploaded = c.Uploaded
		}
	})
}

// request sends one request to each member that is connected and has no error yet.
func (f *fleet) request(members []*member, build func(*member) host.Request) {
	f.each(live(members), func(m *member) {
		m.resp, m.err = m.sess.Run(build(m))
		if m.err == nil && m.resp.Error != "" {
			m.err = fmt.Errorf("host %s: %s", m.target.Name, m.resp.Error)
		}
	})
}

// diff asks every member what applying its desired state would change.
func (f *fleet) diff() {
	f.request(f.members, func(m *member) host.Request {
		return host.Request{Op: host.OpDiff, Host: m.target.Name, Desired: m.desired}
	})
}

// claimDiff is the diff that opens an apply: it also locks each host and claims it for this run's
// connection (held until the run ends). The first host by name goes alone, so of two runs of one
// plan started together the one that claims it first gets every host and the other is turned away
// there. A run turned away claims no other host: their diffs are plain.
func (f *fleet) claimDiff(runID, actor string, wait time.Duration) {
	ms := live(f.members)
	if len(ms) == 0 {
		return
	}
	sortMembers(ms)
	claim := true
	build := func(m *member) host.Request {
		return host.Request{Op: host.OpDiff, Host: m.target.Name, Desired: m.desired, Claim: claim, RunID: runID, Actor: actor, LockWaitMS: wait.Milliseconds()}
	}
	f.request(ms[:1], build)
	claim = ms[0].err == nil
	f.request(ms[1:], build)
}

func (f *fleet) close() {
	for _, m := range f.members {
		if m.sess != nil {
			m.sess.Close()
		}
	}
}

// failed lists the members with an error, sorted by name.
func (f *fleet) failed() []*member {
	var out []*member
	for _, m := range f.members {
		if m.err != nil {
			out = append(out, m)
		}
	}
	return out
}

func live(members []*member) []*member {
	var out []*member
	for _, m := range members {
		if m.err == nil && m.sess != nil {
			out = append(out, m)
		}
	}
	return out
}

func sortMembers(ms []*member) {
	sort.Slice(ms, func(i, j int) bool { return ms[i].target.Name < ms[j].target.Name })
}
