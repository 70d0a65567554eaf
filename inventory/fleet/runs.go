package fleet

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/tunplan/tunplan/modules/protocol"
)

// Generation numbers are per host: a realserver that joined in the second run has that run as its
// generation 1, where the director has it as its generation 2. What a user rolls back to is a run,
// and each host goes to the generation it had as of that run.

// RunInfo is one run as the selected hosts' histories record it: every generation (apply, rollback
// or destroy) with its RunID, across hosts.
type RunInfo struct {
	ID    string         // the run's id; "" for the state before tunplan (every host's generation 0)
	Time  string         // RFC 3339: the latest of its generations
	Actor string         // who ran it (user@machine), as its latest generation records
	Kind  protocol.Kind  // apply, rollback or destroy, as its latest generation records
	Hosts map[string]int // the hosts it changed, each with the generation it recorded there
}

// MinRunPrefix is the shortest prefix of a run id that Targets accepts for the run.
const MinRunPrefix = 4

// runOf is the run a generation belongs to: its RunID, or, for a generation recorded without one,
// a run of its own named after the host and generation.
func runOf(host string, g protocol.Generation) string {
	if g.RunID != "" {
		return g.RunID
	}
	return fmt.Sprintf("%s#%d", host, g.N)
}

// isRun tells whether a generation was made by a run: generation 0 (the baseline) was not.
func isRun(g protocol.Generation) bool { return g.N > 0 && g.Kind != protocol.KindBaseline }

// runs are the runs after History, oldest first, with each run's place in that order.
func (r *Run) runs() ([]RunInfo, map[string]int) {
	byID := map[string]*RunInfo{}
	for _, h := range r.Hosts {
		for _, g := range h.Generations() {
			if !isRun(g) {
				continue
			}
			id := runOf(h.Name(), g)
			ri := byID[id]
			if ri == nil {
				ri = &RunInfo{ID: id, Hosts: map[string]int{}}
				byID[id] = ri
			}
			if n, ok := ri.Hosts[h.Name()]; !ok || g.N > n {
				ri.Hosts[h.Name()] = g.N
			}
			if g.Time >= ri.Time {
				ri.Time, ri.Actor, ri.Kind = g.Time, g.Actor, g.Kind
			}
		}
	}
	out := make([]RunInfo, 0, len(byID))
	for _, ri := range byID {
		out = append(out, *ri)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Time != out[j].Time {
			return out[i].Time < out[j].Time
		}
		return out[i].ID < out[j].ID
	})
	out = r.orderTies(out)
	rank := make(map[string]int, len(out))
	for i, ri := range out {
		rank[ri.ID] = i
	}
	return out, rank
}

// orderTies orders runs recorded in the same second (generation times are whole seconds) as the
// hosts recorded them: a run that comes before another in some host's history comes first. Runs
// no host orders stay in run id order.
func (r *Run) orderTies(sorted []RunInfo) []RunInfo {
	timeOf := make(map[string]string, len(sorted))
	for _, ri := range sorted {
		timeOf[ri.ID] = ri.Time
	}
	before := map[[2]string]bool{} // {a, b}: runs of the same time, a host recorded a before b
	for _, h := range r.Hosts {
		var seq []string
		for _, g := range h.Generations() { // oldest first
			if isRun(g) {
				seq = append(seq, runOf(h.Name(), g))
			}
		}
		for i := range seq {
			for j := i + 1; j < len(seq); j++ {
				if seq[i] != seq[j] && timeOf[seq[i]] == timeOf[seq[j]] {
					before[[2]string{seq[i], seq[j]}] = true
				}
			}
		}
	}
	out := make([]RunInfo, 0, len(sorted))
	for start := 0; start < len(sorted); {
		end := start + 1
		for end < len(sorted) && sorted[end].Time == sorted[start].Time {
			end++
		}
		group := append([]RunInfo(nil), sorted[start:end]...)
		for len(group) > 0 {
			pick := 0 // the first in id order no other run of the group precedes; on a cycle, the first
		find:
			for i, a := range group {
				for k, b := range group {
					if k != i && before[[2]string{b.ID, a.ID}] && !before[[2]string{a.ID, b.ID}] {
						continue find
					}
				}
				pick = i
				break
			}
			out = append(out, group[pick])
			group = append(group[:pick], group[pick+1:]...)
		}
		start = end
	}
	return out
}

// Runs lists, after History, the runs that changed the hosts, newest first: Runs()[i] is the run
// numbered i+1 (0 is the state before tunplan, not a run). Runs are ordered by time (the latest of
// their generations), runs of the same second as the hosts recorded them, then by run id.
func (r *Run) Runs() []RunInfo {
	asc, _ := r.runs()
	out := make([]RunInfo, len(asc))
	for i, ri := range asc {
		out[len(asc)-1-i] = ri
	}
	return out
}

// Targets chooses, after History, the generation each host goes back to for a rollback to the run
// sel names: its number in Runs (1 the newest; 0 the state before tunplan), its id, or a prefix of
// its id of at least MinRunPrefix characters. Each host goes to its newest generation made by that
// run or an older one; a host that run did not yet know goes to its generation 0 (the host before
// tunplan). Hosts already at their target, hosts with no history and hosts that failed are left
// out. It returns the chosen run (one with no ID for 0, before tunplan).
func (r *Run) Targets(sel string) (map[*HostRun]int, RunInfo, error) {
	asc, rank := r.runs()
	run, err := resolveRun(asc, strings.TrimSpace(sel))
	if err != nil {
		return nil, RunInfo{}, err
	}
	limit := -1 // the place of the chosen run: generations of runs at or before it are candidates
	if run.ID != "" {
		limit = rank[run.ID]
	}
	targets := map[*HostRun]int{}
	for _, h := range r.Hosts {
		gens := h.Generations()
		if h.Err() != nil || len(gens) == 0 {
			continue
		}
		target, latest := -1, -1
		for _, g := range gens {
			latest = max(latest, g.N)
			switch {
			case !isRun(g):
				if g.N == 0 && target < 0 {
					target = 0
				}
			case rank[runOf(h.Name(), g)] <= limit && g.N > target:
				target = g.N
			}
		}
		if target >= 0 && target != latest {
			targets[h] = target
		}
	}
	return targets, run, nil
}

// resolveRun finds the run sel names among runs (oldest first).
func resolveRun(asc []RunInfo, sel string) (RunInfo, error) {
	if sel == "" {
		return RunInfo{}, fmt.Errorf("no run given: want a run's number (0 to %d) or id", len(asc))
	}
	var matches []RunInfo
	for _, ri := range asc {
		if ri.ID == sel {
			return ri, nil
		}
		if len(sel) >= MinRunPrefix && strings.HasPrefix(ri.ID, sel) {
			matches = append(matches, ri)
		}
	}
	if n, err := strconv.Atoi(sel); err == nil && sel[0] != '-' && sel[0] != '+' && n <= len(asc) {
		if len(matches) > 0 {
			return RunInfo{}, fmt.Errorf("%q is both run number %d and the start of run id %s: give more of the id", sel, n, matches[0].ID)
		}
		if n == 0 {
			return RunInfo{}, nil // before tunplan
		}
		return asc[len(asc)-n], nil
	}
	switch {
	case len(matches) == 1:
		return matches[0], nil
	case len(matches) > 1:
		ids := make([]string, len(matches))
		for i, m := range matches {
			ids[i] = m.ID
		}
		return RunInfo{}, fmt.Errorf("%q starts more than one run id (%s): give more of it", sel, strings.Join(ids, ", "))
	case len(sel) < MinRunPrefix && strings.Trim(sel, "0123456789") != "":
		return RunInfo{}, fmt.Errorf("no run %q: give a run's number (0 to %d), or its id or at least its first %d characters", sel, len(asc), MinRunPrefix)
	case strings.Trim(sel, "0123456789") == "":
		if len(asc) == 0 {
			return RunInfo{}, fmt.Errorf("no run %s: tunplan has not changed these hosts (0, before tunplan, is the only target)", sel)
		}
		return RunInfo{}, fmt.Errorf("no run %s: the runs are numbered 1 (the newest) to %d, and 0 is before tunplan", sel, len(asc))
	}
	return RunInfo{}, fmt.Errorf("no run has an id starting %q", sel)
}

// RollbackTo puts each host of targets back to its generation there, recorded as this run.
func (r *Run) RollbackTo(targets map[*HostRun]int) {
	var hosts []*HostRun
	for _, h := range r.Hosts {
		if _, ok := targets[h]; ok {
			hosts = append(hosts, h)
		}
	}
	r.request(hosts, Rollback, func(h *HostRun) protocol.Request {
		to := targets[h]
		return protocol.Request{Op: protocol.OpRollback, Host: h.Name(), To: &to, RunID: r.ID, Actor: r.Actor, LockWaitMS: r.lockWaitMS()}
	})
}

// History reads the generations recorded on every host.
func (r *Run) History() {
	r.request(r.Hosts, History, func(h *HostRun) protocol.Request {
		return protocol.Request{Op: protocol.OpHistory, Host: h.Name()}
	})
}

// Generations are the generations the host reported in the History phase.
func (h *HostRun) Generations() []protocol.Generation {
	r, _ := h.Result(History)
	return r.Response.Generations
}

// LastRun finds, after History, the newest run that changed any of the hosts: its latest
// generation on the hosts it changed, and which hosts those are.
func (r *Run) LastRun() (protocol.Generation, []*HostRun, error) {
	latest := func(h *HostRun) *protocol.Generation {
		if gs := h.Generations(); len(gs) > 0 {
			return &gs[len(gs)-1]
		}
		return nil
	}
	var last protocol.Generation
	for _, h := range r.Hosts {
		if g := latest(h); g != nil && g.N > 0 && (g.Time > last.Time || (g.Time == last.Time && g.RunID > last.RunID)) {
			last = *g
		}
	}
	if last.RunID == "" {
		return last, nil, fmt.Errorf("nothing to roll back: tunplan has not changed any of these hosts")
	}
	var out []*HostRun
	for _, h := range r.Hosts {
		if g := latest(h); g != nil && g.RunID == last.RunID {
			out = append(out, h)
		}
	}
	return last, out, nil
}

// Rollback puts hosts back to generation to, or (nil) to the one before their current.
func (r *Run) Rollback(hosts []*HostRun, to *int) {
	r.request(hosts, Rollback, func(h *HostRun) protocol.Request {
		return protocol.Request{Op: protocol.OpRollback, Host: h.Name(), To: to, RunID: r.ID, Actor: r.Actor, LockWaitMS: r.lockWaitMS()}
	})
}
