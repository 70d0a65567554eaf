package host

import (
	"encoding/json"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/protocol"
)

// A director with health checks (State.Checks) gets its watcher, `tunplan-helper watch`, as boot
// files: its configuration (protocol.WatchConfig, the checks as JSON) and a unit that runs it
// (protocol.WatchUnit, enabled by protocol.WatchLink). The watcher reports in protocol.HealthFile;
// what it holds at weight 0 is runtime state: a diff shows it apart and calls it no drift, and an
// apply leaves it (held).

// watchFiles are the watcher's files for st: all three when st has checks, none otherwise.
func watchFiles(helper string, st protocol.State) []protocol.File {
	if len(st.Checks) == 0 {
		return []protocol.File{{Path: protocol.WatchLink, Missing: true}, {Path: protocol.WatchUnit, Missing: true}, {Path: protocol.WatchConfig, Missing: true}}
	}
	spec, _ := json.MarshalIndent(protocol.WatchSpec{Checks: st.Checks, Metrics: st.Metrics}, "", "  ") // plain data: it cannot fail
	return []protocol.File{
		{Path: protocol.WatchConfig, Content: string(spec) + "\n"},
		{Path: protocol.WatchUnit, Content: watchUnit(helper)},
		{Path: protocol.WatchLink, Link: protocol.WatchUnit},
	}
}

// watchUnit runs the watcher for as long as the host is up, restarted when it stops.
func watchUnit(helper string) string {
	return `# Written by tunplan: the director's health checks through the tunnel (` + protocol.WatchConfig + `).
# A destination that fails its checks is held at weight 0 until it passes again; see
# ` + protocol.HealthFile + ` and journalctl -u tunplan-watch.
[Unit]
Description=tunplan: health checks through the tunnel
After=network-online.target tunplan-restore.service
Wants=network-online.target
ConditionPathExists=` + helper + `

[Service]
ExecStart=` + helper + ` watch
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
`
}

// report is the watcher's last report, and whether it is fresh for checks: written within three of
// their shortest intervals (and a second). nil when there is none, or it cannot be read.
func (e *Engine) report(checks []protocol.HealthCheck) (*protocol.Health, bool) {
	if e.HealthFile == "" {
		return nil, false
	}
	b, err := os.ReadFile(e.HealthFile)
	var h protocol.Health
	if err != nil || json.Unmarshal(b, &h) != nil {
		return nil, false
	}
	return &h, h.Fresh(e.clock(), protocol.WatchSpec{Checks: checks})
}

// held is want with the destinations that runtime state holds at weight 0 given weight 0, and those
// destinations: the operator's drains, and what the watcher quiesced. Only a report that is fresh
// for want's checks quiesces anything: a watcher that is down or stale holds no weight at 0, so
// apply gives the plan weights back. A drains file that cannot be read is an error.
func (e *Engine) held(want protocol.State) (protocol.State, []protocol.Held, error) {
	drains, err := e.drains()
	if err != nil {
		return want, nil, err
	}
	var report *protocol.Health
	if len(want.Checks) > 0 {
		if h, fresh := e.report(want.Checks); fresh {
			report = h
		}
	}
	if len(drains) == 0 && report == nil {
		return want, nil, nil
	}
	var out []protocol.Held
	want.Services = slices.Clone(want.Services)
	for i := range want.Services {
		svc := &want.Services[i]
		kept := svc.Destinations[:0:0] // nil stays nil; appends never write over the caller's
		for _, d := range svc.Destinations {
			if h, ok := holdOf(svc.Key(), d, drains, report, want.Checks); ok && d.Weight != 0 {
				out = append(out, h)
				if h.Removed {
					continue // what the watcher removed (on_failure remove) is out of the service
				}
				d.Weight = 0
			}
			kept = append(kept, d)
		}
		svc.Destinations = kept
	}
	return want, out, nil
}

// holdOf says what holds destination d of service svc at weight 0, if anything: a drain first, else
// the watcher's report of a checked service.
func holdOf(svc protocol.Key, d protocol.Destination, drains []protocol.Drain, report *protocol.Health, checks []protocol.HealthCheck) (protocol.Held, bool) {
	h := protocol.Held{Service: svc, Address: d.Address, Port: d.Port, Weight: d.Weight}
	for _, x := range drains {
		if x.Service == svc && x.Address == d.Address && x.Port == d.Port {
			h.By, h.Since, h.Reason = protocol.HeldByDrain, x.Since, "drained by "+x.Actor
			return h, true
		}
	}
	ci := slices.IndexFunc(checks, func(c protocol.HealthCheck) bool { return c.Service == svc })
	if report == nil || ci < 0 {
		return h, false
	}
	c := checks[ci]
	for _, sh := range report.Services {
		for _, dh := range sh.Destinations {
			if sh.Service == svc && dh.Quiesced && dh.Address == d.Address && dh.Port == d.Port {
				h.By, h.Since, h.Reason, h.Removed = protocol.HeldByHealth, dh.Since, dh.Last, c.OnFailure == protocol.Remove
				return h, true
			}
		}
	}
	return h, false
}

// declared is st (read after an apply) with the held destinations as plan (the state asked, before
// held) has them: at their plan weights, and those the watcher removed back in. A generation
// records what the plan asked, so that a restore or a rollback does not hold out what the watcher
// may since have let go.
func declared(st, plan protocol.State, held []protocol.Held) protocol.State {
	if len(held) == 0 {
		return st
	}
	st.Services = slices.Clone(st.Services)
	for i := range st.Services {
		s := &st.Services[i]
		p := slices.IndexFunc(plan.Services, func(x protocol.Service) bool { return x.Key() == s.Key() })
		if p < 0 {
			continue
		}
		s.Destinations = slices.Clone(s.Destinations)
		for _, h := range held {
			if h.Service != s.Key() {
				continue
			}
			at := func(d protocol.Destination) bool { return d.Address == h.Address && d.Port == h.Port }
			want := plan.Services[p].Destinations[slices.IndexFunc(plan.Services[p].Destinations, at)]
			if j := slices.IndexFunc(s.Destinations, at); j >= 0 {
				s.Destinations[j] = want
			} else {
				s.Destinations = append(s.Destinations, want)
			}
		}
		slices.SortFunc(s.Destinations, func(a, b protocol.Destination) int {
			return netip.AddrPortFrom(a.Address, a.Port).Compare(netip.AddrPortFrom(b.Address, b.Port))
		})
	}
	return st
}

// watchModule names the watcher's step among the changes.
const watchModule = "watch"

// watcherStep is the step that makes the watcher run as want asks, if one is needed: started (or
// restarted) when want has checks and the watcher's unit changes among steps, or its report is
// missing or stale (a watcher that is down is drift); stopped when the checks are gone with their
// unit. Checks that change alone need no step: a running watcher reads them again by itself, and
// keeps what it knows. The step runs last, when the files it needs are written.
func (e *Engine) watcherStep(want protocol.State, steps []change.Step) (change.Step, bool) {
	if e.Watcher == nil || e.Files == nil {
		return change.Step{}, false
	}
	unit := slices.ContainsFunc(steps, func(s change.Step) bool {
		return s.Address == "file "+protocol.WatchUnit || s.Address == "file "+protocol.WatchLink
	})
	step := func(act change.Action, before, after string, start bool) (change.Step, bool) {
		return change.Step{
			Change: change.Change{Module: watchModule, Address: "watcher tunplan-watch", Action: act, Before: before, After: after},
			Do:     func() error { return e.Watcher(start) },
		}, true
	}
	if len(want.Checks) == 0 {
		if unit {
			return step(change.Delete, "running", "", false)
		}
		return change.Step{}, false
	}
	h, fresh := e.report(want.Checks)
	switch {
	case unit:
		return step(change.Update, "its unit changes", "restarted", true)
	case h == nil:
		return step(change.Update, "not running (no report)", "running", true)
	case !fresh:
		return step(change.Update, "stale (last report "+h.Heartbeat.UTC().Format(time.RFC3339)+")", "running", true)
	}
	return change.Step{}, false
}
