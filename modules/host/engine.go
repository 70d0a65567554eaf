package host

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"time"

	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/files"
	"github.com/tunplan/tunplan/modules/fou"
	"github.com/tunplan/tunplan/modules/ipvs"
	"github.com/tunplan/tunplan/modules/kmod"
	"github.com/tunplan/tunplan/modules/mss"
	"github.com/tunplan/tunplan/modules/nft"
	"github.com/tunplan/tunplan/modules/protocol"
	"github.com/tunplan/tunplan/modules/route"
	"github.com/tunplan/tunplan/modules/sockets"
	"github.com/tunplan/tunplan/modules/sysctl"
	"github.com/tunplan/tunplan/modules/tunnel"
)

// Engine reconciles one host. Its fields are the kernel boundaries, so tests can run it on fakes.
type Engine struct {
	Dir    string // state directory, /var/lib/tunplan
	Kmod   kmod.Kernel
	Sysctl sysctl.Kernel
	Tunnel tunnel.Kernel
	IPVS   func() (ipvs.Kernel, error) // opened only when a service is in scope
	// MSS sets the advmss of the default routes (a realserver's tunnel_mss); read only when a route
	// is in scope.
	MSS mss.Kernel
	// Fou owns a GUE realserver's fou listeners; read only when a port is in scope and the fou
	// module is loaded.
	Fou fou.Kernel
	// Nft holds a director's mark rules (firewall-mark services); read only when a mark is in
	// scope and nf_tables is loaded.
	Nft nft.Kernel
	// Release reads the kernel's release ("6.1.0-18-amd64"): a director refuses a GUE or GRE tunnel
	// its kernel cannot make. nil: not checked.
	Release func() (string, error)
	// Sockets and Routes are read by explain (verify, on a realserver): what listens, and the route
	// back to the director.
	Sockets sockets.Kernel
	Routes  route.Kernel
	// Probe sends a director's verify probes (OpProbe) and reports what answered each, in order;
	// timeout bounds the whole request.
	Probe func(probes []protocol.Probe, timeout time.Duration) ([]protocol.ProbeResult, error)
	// Files, when set, makes every state carry the files that rebuild it at boot (see boot.go),
	// which run the helper at Helper; Systemd tells whether systemd runs the host.
	Files   files.FS
	Helper  string
	Systemd func() bool
	// Watcher starts (or restarts) the director's watcher, or stops it (see watch.go); HealthFile
	// is where the watcher reports, read for what it holds at weight 0 and whether it runs.
	Watcher    func(start bool) error
	HealthFile string
	Now        func() time.Time
	// Session is the SSH connection the request came over; changes that would cut it are refused.
	Session *Session
	// Open tells whether a session's TCP connection is still established on this host; with a
	// Session, it lets a run claim the host for as long as its connection lasts (see locked).
	Open func(*Session) bool
	// FaultAt, when > 0, fails the apply before its FaultAt-th step; FaultDelay sleeps before each
	// step, so a test can cut the connection mid-apply (test builds only).
	FaultAt    int
	FaultDelay time.Duration

	ipvs    ipvs.Kernel
	lastRun *protocol.LastRun // recorded by the latest apply or rollback of this process
}

// Handle answers one request. Errors are reported in the response, never as a crash.
func (e *Engine) Handle(req protocol.Request) protocol.Response {
	resp := protocol.Response{Host: req.Host, Changes: []change.Change{}}
	var err error
	switch req.Op {
	case protocol.OpDiff:
		diff := func() error {
			owned, err := e.latestState()
			if err != nil {
				return err
			}
			want, held, err := e.held(e.withBoot(req.Desired))
			if err != nil {
				return err
			}
			resp.Held = held
			steps, err := e.plan(want, owned)
			if err == nil {
				resp.Changes = change.Changes(steps)
			}
			return err
		}
		if req.Claim {
			err = e.locked(req, diff)
		} else {
			err = diff()
		}
		resp.LastRun = e.lastRunToTell()
	case protocol.OpApply, protocol.OpRollback:
		err = e.locked(req, func() error {
			err := e.converge(req, &resp)
			if rerr := e.recordLastRun(req, resp, err); rerr != nil && err == nil {
				err = rerr
			}
			return err
		})
	case protocol.OpHistory:
		resp.Generations, err = e.generations()
	case protocol.OpDestroy:
		if req.DryRun {
			err = e.destroy(req, &resp)
		} else {
			err = e.locked(req, func() error { return e.destroy(req, &resp) })
		}
	case protocol.OpInspect:
		resp.Inventory, err = e.inspect()
	case protocol.OpProbe:
		resp.Probes, err = e.probe(req)
	case protocol.OpExplain:
		resp.Facts, err = e.explain(req.Explain)
	case protocol.OpDoctor:
		resp.Doctor, err = e.doctor()
	case protocol.OpStatus:
		resp.Status, err = e.status(req.Desired)
	case protocol.OpDrain, protocol.OpUndrain:
		err = e.locked(req, func() error { return e.drain(req, &resp) })
	default:
		err = fmt.Errorf("unknown operation %q", req.Op)
	}
	if err != nil {
		resp.Error = withRepair(err).Error()
	}
	return resp
}

// scope is every object tunplan wants or owns on the host: what facts are read for.
type scope struct {
	modules  []string
	sysctls  []string
	links    map[string][]netip.Prefix
	services map[protocol.Key]bool
	files    []string
	routes   []string // routes whose advmss is wanted or owned
	fou      []uint16 // fou ports wanted or owned
	marks    bool     // mark rules are wanted or owned: the table inet tunplan is read
	// tunnels: a destination wants or has a tunnel other than IPIP, so destinations are read in a
	// way that tells GUE and GRE from IPIP (ipvs.Facts).
	tunnels bool
}

func scopeOf(states ...protocol.State) scope {
	sc := scope{links: map[string][]netip.Prefix{}, services: map[protocol.Key]bool{}}
	seenS, seenM, seenF, seenR := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	seenP := map[uint16]bool{}
	for _, st := range states {
		for _, m := range st.Modules {
			if !seenM[m] {
				seenM[m] = true
				sc.modules = append(sc.modules, m)
			}
		}
		for _, s := range st.Sysctls {
			if !seenS[s.Key] {
				seenS[s.Key] = true
				sc.sysctls = append(sc.sysctls, s.Key)
			}
		}
		for _, l := range st.Links {
			sc.links[l.Name] = append(sc.links[l.Name], l.Addresses...)
		}
		for _, s := range st.Services {
			sc.services[s.Key()] = true
			for _, d := range s.Destinations {
				if d.Tunnel.Type != protocol.TunnelIPIP {
					sc.tunnels = true
				}
			}
		}
		if len(st.Marks) > 0 {
			sc.marks = true
		}
		for _, p := range st.Fou {
			if !seenP[p.Port] {
				seenP[p.Port] = true
				sc.fou = append(sc.fou, p.Port)
			}
		}
		for _, f := range st.Files {
			if !seenF[f.Path] {
				seenF[f.Path] = true
				sc.files = append(sc.files, f.Path)
			}
		}
		// A route is in scope while a state sets its advmss: an advmss of 0 (none) asks nothing of
		// a route that no other state sets, so a route whose advmss tunplan removed is released,
		// and one set by hand afterwards is left alone.
		for _, r := range st.Routes {
			if (r.AdvMSS != 0 || r.Mixed) && !r.Missing && !seenR[r.Dst] {
				seenR[r.Dst] = true
				sc.routes = append(sc.routes, r.Dst)
			}
		}
	}
	sort.Strings(sc.routes)
	return sc
}

// facts reads the current state of everything in scope.
func (e *Engine) facts(sc scope) (protocol.State, error) {
	var st protocol.State
	var err error
	st.Modules = kmod.Facts(e.Kmod, sc.modules)
	if st.Sysctls, err = sysctl.Facts(e.Sysctl, sc.sysctls); err != nil {
		return st, err
	}
	if st.Links, err = tunnel.Facts(e.Tunnel, sc.links); err != nil {
		return st, err
	}
	if len(sc.files) > 0 && e.Files != nil {
		if st.Files, err = files.Facts(e.Files, sc.files); err != nil {
			return st, err
		}
	}
	// Without fou loaded there is no fou listener (and no generic netlink family to ask).
	if len(sc.fou) > 0 && e.Kmod.Loaded(fou.Module) {
		if e.Fou == nil {
			return st, errors.New("fou: this helper cannot read fou ports")
		}
		if st.Fou, err = fou.Facts(e.Fou, sc.fou); err != nil {
			return st, err
		}
	}
	// Without nf_tables loaded there is no table (and reading one would load the module).
	if sc.marks && e.Kmod.Loaded(nft.Module) {
		if e.Nft == nil {
			return st, errors.New("nft: this helper cannot read mark rules")
		}
		if st.Marks, st.MarkTable, err = nft.Facts(e.Nft); err != nil {
			return st, err
		}
	}
	if len(sc.routes) > 0 {
		if e.MSS == nil {
			return st, errors.New("mss: this helper cannot read routes")
		}
		if st.Routes, err = mss.Facts(e.MSS, sc.routes); err != nil {
			return st, err
		}
	}
	// Without ip_vs loaded there is no IPVS table, hence no services (and nothing to open).
	if len(sc.services) > 0 && e.Kmod.Loaded("ip_vs") {
		k, err := e.openIPVS()
		if err != nil {
			return st, err
		}
		if st.Services, err = ipvs.Facts(k, sc.services, sc.tunnels); err != nil {
			return st, err
		}
	}
	return st, nil
}

func (e *Engine) openIPVS() (ipvs.Kernel, error) {
	if e.ipvs == nil {
		k, err := e.IPVS()
		if err != nil {
			return nil, fmt.Errorf("ipvs: %w (is ip_vs loaded?)", err)
		}
		e.ipvs = k
	}
	return e.ipvs, nil
}

// plan reads facts for want and owned and returns the steps from the host's state to want, in the
// order they must run: additions and updates module by module (kernel modules, devices, sysctls,
// fou ports, IPVS, mark rules (a firewall-mark service exists before packets get its mark), boot
// files, routes' advmss), then removals in the reverse order (IPVS before the
// VIP leaves the device). The advmss comes last: at boot, a default route that does not exist yet
// fails it after everything else was restored.
func (e *Engine) plan(want, owned protocol.State) ([]change.Step, error) {
	cur, err := e.facts(scopeOf(want, owned))
	if err != nil {
		return nil, err
	}
	if err := e.refuse(want, cur); err != nil {
		return nil, err
	}
	return e.steps(want, cur), nil
}

// refuse is why moving the host from cur to want must not start, or nil: it would cut the SSH
// session, or ask for a tunnel the kernel cannot make.
func (e *Engine) refuse(want, cur protocol.State) error {
	if err := e.Session.check(want, cur); err != nil {
		return err
	}
	return e.checkKernel(want)
}

func (e *Engine) steps(want, cur protocol.State) []change.Step {
	byModule := [][]change.Step{
		kmod.Diff(e.Kmod, want.Modules, cur.Modules),
		tunnel.Diff(e.Tunnel, want.Links, cur.Links),
		sysctl.Diff(e.Sysctl, want.Sysctls, cur.Sysctls),
		fou.Diff(e.Fou, want.Fou, cur.Fou),
		ipvs.Diff(e.openIPVS, want.Services, cur.Services),
		nft.Diff(e.Nft, want.Marks, cur.Marks, cur.MarkTable),
		files.Diff(e.Files, want.Files, cur.Files),
		mss.Diff(e.MSS, want.Routes, cur.Routes),
	}
	var adds, removes []change.Step
	for i := range byModule {
		for _, s := range byModule[i] {
			if s.Action != change.Delete {
				adds = append(adds, s)
			}
		}
		for _, s := range byModule[len(byModule)-1-i] {
			if s.Action == change.Delete {
				removes = append(removes, s)
			}
		}
	}
	steps := append(adds, removes...)
	if s, ok := e.watcherStep(want, steps); ok {
		steps = append(steps, s)
	}
	return steps
}

// converge applies a desired state (apply) or a recorded generation (rollback) as a transaction:
// snapshot, run the steps, restore the snapshot if one fails, record a generation if all succeed.
func (e *Engine) converge(req protocol.Request, resp *protocol.Response) error {
	latest, err := e.latestGeneration()
	if err != nil {
		return err
	}
	owned := protocol.State{}
	if latest != nil {
		owned = latest.State
	}
	want, kind := e.withBoot(req.Desired), protocol.KindApply
	if req.Op == protocol.OpRollback {
		kind = protocol.KindRollback
		if want, err = e.rollbackTarget(latest, req.To); err != nil {
			return err
		}
	}
	if w := e.bootWarning(want); w != "" {
		resp.Warnings = append(resp.Warnings, w)
	}
	planned := want
	if want, resp.Held, err = e.held(want); err != nil {
		return err
	}
	sc := scopeOf(want, owned)
	snapshot, err := e.facts(sc)
	if err != nil {
		return err
	}
	if err := e.refuse(want, snapshot); err != nil {
		return err
	}
	steps := filterPhase(e.steps(want, snapshot), req.Phase)
	if len(steps) == 0 {
		resp.Outcome = protocol.Unchanged
		if latest != nil {
			resp.Generation = latest.N
		}
		return nil
	}
	if latest == nil {
		// Generation 0 is the host as it was before tunplan first changed it.
		base := protocol.Generation{N: 0, Time: e.now(), Kind: protocol.KindBaseline, Actor: req.Actor, State: snapshot}
		if err := e.writeGeneration(base); err != nil {
			return err
		}
		latest = &base
	}
	if err := e.run(steps); err != nil {
		resp.Changes = change.Changes(steps)
		return e.restore(sc, snapshot, err, resp)
	}
	after, err := e.facts(sc)
	if err != nil {
		return err
	}
	// The generation records what was asked: the checks (declared, not read from the kernel) and
	// the plan weights of what the watcher holds at 0.
	after = declared(after, planned, resp.Held)
	after.Checks, after.Metrics = want.Checks, want.Metrics
	resp.Changes = change.Changes(steps)
	gen := protocol.Generation{N: latest.N + 1, Time: e.now(), Kind: kind, RunID: req.RunID, Actor: req.Actor, Changes: len(steps), State: after}
	if req.RunID != "" && latest.RunID == req.RunID && latest.Kind == kind {
		gen.N, gen.Changes = latest.N, latest.Changes+len(steps) // a later phase of the same run
	}
	if err := e.writeGeneration(gen); err != nil {
		return err
	}
	resp.Outcome, resp.Generation = protocol.Applied, gen.N
	return nil
}

// run executes steps in order; FaultAt injects a failure before one of them. Pipelined steps are
// flushed before a step that is not of their kind and at the end, so the host is settled on return.
func (e *Engine) run(steps []change.Step) (err error) {
	var pending func() error
	flush := func() error {
		if pending == nil {
			return nil
		}
		f := pending
		pending = nil
		return f()
	}
	defer func() {
		if ferr := flush(); err == nil {
			err = ferr
		}
	}()
	for i, s := range steps {
		if e.FaultAt == i+1 {
			return fmt.Errorf("injected fault before step %d (%s)", i+1, s.Address)
		}
		time.Sleep(e.FaultDelay)
		if s.Flush == nil || (i > 0 && steps[i-1].Module != s.Module) {
			if err := flush(); err != nil {
				return err
			}
		}
		if err := s.Do(); err != nil {
			return err
		}
		if s.Flush != nil {
			pending = s.Flush
		}
	}
	return nil
}

// restore puts the snapshot back after a failed step and says how that went.
func (e *Engine) restore(sc scope, snapshot protocol.State, cause error, resp *protocol.Response) error {
	cur, err := e.facts(sc)
	if err == nil {
		e.FaultAt, e.FaultDelay = 0, 0 // the fault is in the apply, not in its restore
		err = e.run(e.steps(snapshot, cur))
	}
	if err != nil {
		resp.Outcome = protocol.RestoreFailed
		return fmt.Errorf("%w; restoring the snapshot also failed: %v", cause, err)
	}
	resp.Outcome = protocol.Restored
	return fmt.Errorf("%w (the host was restored to its state before this apply)", cause)
}

func filterPhase(steps []change.Step, p protocol.Phase) []change.Step {
	if p == protocol.PhaseAll {
		return steps
	}
	var out []change.Step
	for _, s := range steps {
		if (p == protocol.PhaseRemove) == (s.Action == change.Delete) {
			out = append(out, s)
		}
	}
	return out
}

func (e *Engine) rollbackTarget(latest *protocol.Generation, to *int) (protocol.State, error) {
	if latest == nil {
		return protocol.State{}, errors.New("nothing to roll back: tunplan has not changed this host")
	}
	n := latest.N - 1
	if to != nil {
		n = *to
	}
	g, err := e.readGeneration(n)
	if errors.Is(err, os.ErrNotExist) {
		return protocol.State{}, fmt.Errorf("no generation %d on this host (have 0..%d)", n, latest.N)
	}
	if err != nil {
		return protocol.State{}, err
	}
	// The generation's state, with the boot files of this helper (the recorded unit may run one an
	// upgrade removed); a host that had none then (before tunplan) gets none.
	for _, f := range g.State.Files {
		if f.Path == protocol.RestoreUnit && f.Missing {
			return g.State, nil
		}
	}
	return e.withBoot(g.State), nil
}

func (e *Engine) now() string { return e.clock().UTC().Format(time.RFC3339) }

func (e *Engine) clock() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}
