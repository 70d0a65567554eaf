package host

import (
	"encoding/json"
	"os"
	"slices"

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
	spec, _ := json.MarshalIndent(protocol.WatchSpec{Checks: st.Checks}, "", "  ") // plain data: it cannot fail
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

// held is want with the destinations the watcher holds at weight 0 given weight 0, and those
// destinations. Only a report that is fresh for want's checks holds anything: a watcher that is
// down or stale holds no weight at 0, so apply gives the plan weights back.
func (e *Engine) held(want protocol.State) (protocol.State, []protocol.Held) {
	if len(want.Checks) == 0 || e.HealthFile == "" {
		return want, nil
	}
	b, err := os.ReadFile(e.HealthFile)
	var h protocol.Health
	if err != nil || json.Unmarshal(b, &h) != nil || !h.Fresh(e.clock(), protocol.WatchSpec{Checks: want.Checks}) {
		return want, nil
	}
	var out []protocol.Held
	want.Services = slices.Clone(want.Services)
	for _, sh := range h.Services {
		i := slices.IndexFunc(want.Services, func(s protocol.Service) bool { return s.Key() == sh.Service })
		if i < 0 || !slices.ContainsFunc(want.Checks, func(c protocol.HealthCheck) bool { return c.Service == sh.Service }) {
			continue
		}
		svc := &want.Services[i]
		svc.Destinations = slices.Clone(svc.Destinations)
		for _, dh := range sh.Destinations {
			for j := range svc.Destinations {
				if d := &svc.Destinations[j]; dh.Quiesced && d.Address == dh.Address && d.Port == dh.Port && d.Weight != 0 {
					out = append(out, protocol.Held{Service: sh.Service, Address: d.Address, Port: d.Port, Weight: d.Weight, Since: dh.Since, Reason: dh.Last})
					d.Weight = 0
				}
			}
		}
	}
	return want, out
}

// declared is st (read after an apply) with the held destinations at their plan weights: a
// generation records what the plan asked, so that a restore or a rollback does not hold at 0 what
// the watcher may since have let go.
func declared(st protocol.State, held []protocol.Held) protocol.State {
	if len(held) == 0 {
		return st
	}
	st.Services = slices.Clone(st.Services)
	for i := range st.Services {
		s := &st.Services[i]
		s.Destinations = slices.Clone(s.Destinations)
		for j := range s.Destinations {
			d := &s.Destinations[j]
			for _, h := range held {
				if h.Service == s.Key() && h.Address == d.Address && h.Port == d.Port {
					d.Weight = h.Weight
				}
			}
		}
	}
	return st
}

// startWatcher has systemd run the watcher as the files of steps (applied) left it: reloaded when
// its unit changed, restarted when the unit is new or changed, started when only its configuration
// changed (a running watcher reads it again by itself, and keeps what it knows), stopped when it
// is gone. It returns what went wrong, as warnings: the state is applied either way.
func (e *Engine) startWatcher(steps []change.Step, want protocol.State) []string {
	if e.Systemctl == nil || e.Systemd == nil || !e.Systemd() {
		return nil
	}
	unit, config := false, false
	for _, s := range steps {
		switch s.Address {
		case "file " + protocol.WatchUnit, "file " + protocol.WatchLink:
			unit = true
		case "file " + protocol.WatchConfig:
			config = true
		}
	}
	var cmds [][]string
	if unit {
		cmds = append(cmds, []string{"daemon-reload"})
	}
	switch {
	case len(want.Checks) == 0 && unit:
		cmds = append(cmds, []string{"stop", "tunplan-watch.service"})
	case len(want.Checks) > 0 && unit:
		cmds = append(cmds, []string{"restart", "tunplan-watch.service"})
	case len(want.Checks) > 0 && config:
		cmds = append(cmds, []string{"start", "tunplan-watch.service"})
	}
	var warnings []string
	for _, c := range cmds {
		if err := e.Systemctl(c...); err != nil {
			warnings = append(warnings, "systemctl "+c[0]+": "+err.Error())
		}
	}
	return warnings
}
