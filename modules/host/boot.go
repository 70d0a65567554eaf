package host

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"

	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/mss"
	"github.com/tunplan/tunplan/modules/protocol"
)

// The kernel forgets IPVS, the VIPs and tunl0's sysctls at a reboot, and tunplan has no daemon on
// the host. So every state tunplan applies carries the files that rebuild it at boot, with no SSH
// and no control machine:
//
//   - protocol.ModulesLoad: the state's kernel modules, for systemd-modules-load. ipip loaded there
//     makes tunl0 before systemd-sysctl's first pass, and udev replays the per-device keys of
//     /etc/sysctl.d (net.ipv4.conf.tunl0.rp_filter) whenever tunl0 appears.
//   - protocol.SysctlFile: the state's sysctls, late-sorting, for systemd-sysctl (and so that a
//     restart of systemd-sysctl does not silently undo them).
//   - protocol.RestoreUnit, enabled for sysinit.target by protocol.RestoreLink: a oneshot unit,
//     after modules and sysctls are loaded and before the network is set up, that runs
//     `tunplan-helper restore`: the latest generation's state applied again, touching only what
//     tunplan owns, each change written to the journal.
//   - protocol.RestoreLateUnit, only for a state that sets the advmss of the default routes
//     (tunnel_mss): the early unit runs before the network is configured, when those routes do not
//     exist yet, so it leaves them to this one, ordered after network-online.target, which runs
//     `tunplan-helper restore --late`.
//
// A host whose state is empty gets none of them. A unit file is read by systemd at boot, so no
// systemctl call is needed; without systemd the files are still written, and apply warns.

// bootFiles are the files that rebuild st at boot, run by the helper at path helper.
func bootFiles(helper string, st protocol.State) []protocol.File {
	mods := protocol.File{Path: protocol.ModulesLoad, Missing: true}
	sysctls := protocol.File{Path: protocol.SysctlFile, Missing: true}
	unit := protocol.File{Path: protocol.RestoreUnit, Missing: true}
	link := protocol.File{Path: protocol.RestoreLink, Missing: true}
	late := protocol.File{Path: protocol.RestoreLateUnit, Missing: true}
	lateLink := protocol.File{Path: protocol.RestoreLateLink, Missing: true}
	if len(st.Modules) > 0 {
		mods = protocol.File{Path: protocol.ModulesLoad, Content: "# Written by tunplan: kernel modules this host needs from boot on.\n" + strings.Join(st.Modules, "\n") + "\n"}
	}
	if len(st.Sysctls) > 0 {
		var b strings.Builder
		b.WriteString("# Written by tunplan: the kernel parameters its plan sets on this host.\n")
		for _, s := range st.Sysctls { // sorted by key, as every State's
			fmt.Fprintf(&b, "%s = %s\n", s.Key, s.Value)
		}
		sysctls = protocol.File{Path: protocol.SysctlFile, Content: b.String()}
	}
	if !st.Empty() {
		unit = protocol.File{Path: protocol.RestoreUnit, Content: restoreUnit(helper)}
		link = protocol.File{Path: protocol.RestoreLink, Link: protocol.RestoreUnit}
	}
	if slices.ContainsFunc(st.Routes, func(r protocol.RouteMSS) bool { return r.AdvMSS != 0 }) {
		late = protocol.File{Path: protocol.RestoreLateUnit, Content: restoreLateUnit(helper)}
		lateLink = protocol.File{Path: protocol.RestoreLateLink, Link: protocol.RestoreLateUnit}
	}
	return append([]protocol.File{mods, sysctls, lateLink, link, late, unit}, watchFiles(helper, st)...)
}

// restoreUnit is the oneshot unit that runs helper's restore at boot.
func restoreUnit(helper string) string {
	return `# Written by tunplan: rebuilds at boot what tunplan last applied to this host (the latest
# generation in ` + protocol.StateDir + `): kernel modules, tunl0 with its VIPs, sysctls, IPVS.
[Unit]
Description=tunplan: restore LVS-TUN state (IPVS services, tunnel VIPs, sysctls)
DefaultDependencies=no
After=systemd-modules-load.service systemd-sysctl.service local-fs.target
Before=network-pre.target
Wants=network-pre.target
ConditionPathExists=` + helper + `

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=` + helper + ` restore

[Install]
WantedBy=sysinit.target
`
}

// restoreLateUnit is the unit that restores, once the network is online, what the early restore
// could not (the advmss of default routes).
func restoreLateUnit(helper string) string {
	return `# Written by tunplan: sets at boot, once the network is online, what tunplan applied to this host
# that needs the network configured first (the advmss of the default routes: tunnel_mss).
[Unit]
Description=tunplan: restore LVS-TUN state that needs the network (advmss of default routes)
After=network-online.target tunplan-restore.service
Wants=network-online.target
ConditionPathExists=` + helper + `

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=` + helper + ` restore --late

[Install]
WantedBy=multi-user.target
`
}

// withBoot is st with the files that rebuild it at boot (st unchanged when the engine has no file
// boundary).
func (e *Engine) withBoot(st protocol.State) protocol.State {
	if e.Files == nil {
		return st
	}
	st.Files = bootFiles(e.Helper, st)
	return st
}

// bootWarning is what apply tells about a host whose boot restore cannot run, or "".
func (e *Engine) bootWarning(want protocol.State) string {
	if e.Files == nil || e.Systemd == nil || e.Systemd() || want.Empty() {
		return ""
	}
	return fmt.Sprintf("systemd is not running on this host: %s is installed but nothing will run it at boot; "+
		"have the host's init system run `%s restore` once the network devices exist", protocol.RestoreUnit, e.Helper)
}

// Restore rebuilds the latest generation's state, as the boot units ask: it applies what the last
// apply or rollback left, touching only what tunplan owns, and writes each change to log. It records
// no generation: the host comes back to the one it had. The early unit runs before the network is
// configured: a route's advmss that cannot be set then (no default route yet) is left, with a line,
// to the late unit, which runs after network-online.target with late set, where it is an error.
// A latest generation that cannot be read (cut short by a crash) gives way, with a line naming it,
// to the newest one that can: at boot, an older state serves traffic where none would not.
func (e *Engine) Restore(log io.Writer, late bool) error {
	return e.locked(protocol.Request{Actor: "tunplan-helper restore", LockWaitMS: 60_000}, func() error {
		ns, err := e.generationNumbers()
		if err != nil {
			return err
		}
		if len(ns) == 0 {
			fmt.Fprintln(log, "tunplan-helper restore: nothing to restore: tunplan has not changed this host")
			return nil
		}
		g, unreadable, err := e.newestReadable(ns)
		if err != nil {
			return err
		}
		if unreadable != "" {
			fmt.Fprintf(log, "tunplan-helper restore: %s; restoring generation %d instead, the newest that can be read; %s\n", unreadable, g.N, repairHint)
		}
		want, held, err := e.held(g.State)
		if err != nil {
			fmt.Fprintf(log, "tunplan-helper restore: %v: restoring the generation's weights, drains left out\n", err)
			want = g.State
		}
		for _, h := range held {
			fmt.Fprintf(log, "tunplan-helper restore: %s -> %s held at weight 0: %s\n", h.Service, netip.AddrPortFrom(h.Address, h.Port), h.Reason)
		}
		steps, err := e.plan(want, g.State)
		if err != nil {
			return err
		}
		// systemd starts the watcher at boot by its own unit (a restart asked from here would wait
		// for network-online.target, which this early unit comes before).
		steps = slices.DeleteFunc(steps, func(s change.Step) bool { return s.Module == watchModule })
		var routes []change.Step
		if !late {
			steps = slices.DeleteFunc(steps, func(s change.Step) bool {
				if s.Module == mss.Module {
					routes = append(routes, s)
					return true
				}
				return false
			})
		}
		fmt.Fprintf(log, "tunplan-helper restore: generation %d (%s of run %s by %s at %s): %d changes\n", g.N, g.Kind, g.RunID, g.Actor, g.Time, len(steps)+len(routes))
		for _, c := range change.Changes(append(slices.Clone(steps), routes...)) {
			fmt.Fprintf(log, "  %c %s  %s\n", c.Action, c.Address, c.Shown())
		}
		if err := e.run(steps); err != nil {
			return fmt.Errorf("restore generation %d: %w", g.N, err)
		}
		if err := e.run(routes); err != nil {
			fmt.Fprintf(log, "tunplan-helper restore: %v: left to tunplan-restore-late.service, once the network is online\n", err)
		}
		return nil
	})
}

// newestReadable is the newest of the generations ns (oldest first) that can be read, and what is
// wrong with the newer ones ("" when it is the newest). A boot restores what it can: an older
// state is better than none. None readable is an error naming them all.
func (e *Engine) newestReadable(ns []int) (protocol.Generation, string, error) {
	var bad []string
	for i := len(ns) - 1; i >= 0; i-- {
		g, err := e.readGeneration(ns[i])
		if err == nil {
			return g, strings.Join(bad, "; "), nil
		}
		bad = append(bad, err.Error())
	}
	return protocol.Generation{}, "", fmt.Errorf("no generation can be read: %s; %s", strings.Join(bad, "; "), repairHint)
}
