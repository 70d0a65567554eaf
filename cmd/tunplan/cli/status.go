package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fatih/color"
	"github.com/spf13/cobra"

	"github.com/tunplan/tunplan/internal/remotetext"
	"github.com/tunplan/tunplan/inventory/fleet"
	"github.com/tunplan/tunplan/modules/protocol"
)

type statusOptions struct {
	*globalOptions
	watch time.Duration
}

func newStatus(g *globalOptions) *cobra.Command {
	o := &statusOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show what each director runs now: weights, health, drains and connections of every destination (runtime state)",
		Long: `status reads, on every selected director, each service of the plan as the kernel runs it now, and
for each destination: its weight now and the plan's, its state, and IPVS's counters (connections
active and inactive now; connections, packets and bytes since it was added, which the kernel
gathers every 2 s). It also says whether
the director's watcher runs and when it last reported. It changes nothing and takes no lock.

A destination's state is one of:
  up                   it has its plan weight (a checked one passes its checks)
  quiesced             it fails its health checks: the watcher holds it at weight 0 (since, and why)
  failing, fail open   it fails its checks, but so does every destination of the service, so all keep
                       their plan weight (a checker that cannot see must not take a service down)
  drained              an operator drained it (tunplan drain): weight 0 until tunplan undrain
  drift                its weight is neither the plan's nor held at 0: run tunplan diff

In TUN mode the replies do not pass the director, so its "out" counters stay 0; an active
connection is one IPVS saw established and not yet closed by the client.

Exit status: 0 when every director answered, 1 otherwise.`,
		Example: `  tunplan status
  tunplan status --hosts lvs01 --watch 2s
  tunplan status --json | jq '.directors[].status.services[].destinations[] | select(.weight == 0)'`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if o.watch < 0 || (o.watch > 0 && o.json) {
				return fmt.Errorf("--watch %v: want a positive duration, such as 2s, and no --json", o.watch)
			}
			return statusRun(o)
		},
	}
	g.addHostFlags(cmd)
	cmd.Flags().BoolVar(&g.json, "json", false, "write every director's status as JSON")
	cmd.Flags().DurationVar(&o.watch, "watch", 0, "show the status again every interval, until interrupted")
	return cmd
}

func statusRun(o *statusOptions) error {
	r, err := o.openDirectors()
	if err != nil {
		return err
	}
	defer r.Close()
	if len(r.Hosts) == 0 {
		return fmt.Errorf("no director is selected: status reads directors (--hosts %s)", strings.Join(o.hosts, ","))
	}
	names := o.plan.RealserverNames()
	if o.watch == 0 {
		r.Status()
		if o.json {
			if err := renderStatusJSON(o.io.Out, r); err != nil {
				return err
			}
			if len(r.Failed()) > 0 {
				return errReported
			}
			return nil
		}
		renderStatus(o.io, o.io.Out, r, names, time.Now())
		return o.reportFailures(r)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	for {
		r.Status()
		if o.io.Color {
			fmt.Fprint(o.io.Out, "\x1b[H\x1b[2J") // a terminal: redraw in place
		}
		now := time.Now()
		fmt.Fprintf(o.io.Out, "%s (every %v; interrupt to stop)\n", now.UTC().Format(time.RFC3339), o.watch)
		renderStatus(o.io, o.io.Out, r, names, now)
		for _, h := range r.Failed() {
			fmt.Fprintf(o.io.Out, "%s\n", o.io.paint(color.FgRed)(remotetext.Escape(h.Err().Error())))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.watch):
		}
	}
}

// renderStatus writes each director's status:
//
//	# lvs01 (director, 198.19.0.11): watcher running (pid 812), last report 0.4s ago
//	  tcp/198.18.48.180:80 (wrr)
//	    DESTINATION       REALSERVER  WEIGHT  PLAN  ACTIVE  INACTIVE  CONNS  PACKETS  BYTES   STATE
//	    198.18.10.182:80  rs1         1       1     0       2         120    1466     95.3kB  up
//	    198.18.10.183:80  rs2         0       1     0       0         60     733      47.6kB  quiesced since 2026-12-03T13:02:11Z: connect: connection refused
func renderStatus(io *IOStreams, w io.Writer, r *fleet.Run, names map[netip.Addr]string, now time.Time) {
	bold, red := io.paint(color.Bold), io.paint(color.FgRed)
	for _, h := range r.Hosts {
		if !h.Roles.Has(protocol.Director) {
			continue
		}
		head := fmt.Sprintf("# %s (%s, %s)", h.Name(), h.Roles, h.Address)
		st := h.StatusOf(fleet.Status)
		if st == nil {
			fmt.Fprintf(w, "%s: %s\n", bold(head), red("failed (error below)"))
			continue
		}
		watcher, drift := watcherState(*st, h.Desired, now)
		if drift {
			watcher = red(watcher)
		}
		fmt.Fprintf(w, "%s: %s\n", bold(head), watcher)
		for _, s := range st.Services {
			if s.Missing {
				fmt.Fprintf(w, "  %s: %s\n", s.Service, red("not in the kernel (drift: run tunplan diff)"))
				continue
			}
			fmt.Fprintf(w, "  %s (%s)\n", s.Service, s.Scheduler)
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "    DESTINATION\tREALSERVER\tWEIGHT\tPLAN\tACTIVE\tINACTIVE\tCONNS\tPACKETS\tBYTES\tSTATE")
			for _, d := range s.Destinations {
				plan, planned := planWeight(h.Desired, s.Service, d)
				name := cmp.Or(names[d.Address], "-")
				planText := "-"
				if planned {
					planText = fmt.Sprint(plan)
				}
				fmt.Fprintf(tw, "    %s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", netip.AddrPortFrom(d.Address, d.Port), name, d.Weight, planText,
					d.ActiveConns, d.InactiveConns, d.Conns, d.InPackets, bytesText(d.InBytes), destinationState(*st, s.Service, d, plan, planned))
			}
			for _, x := range planDestinations(h.Desired, s.Service) {
				if !slices.ContainsFunc(s.Destinations, func(d protocol.DestinationStatus) bool { return d.Address == x.Address && d.Port == x.Port }) {
					fmt.Fprintf(tw, "    %s\t%s\t-\t%d\t-\t-\t-\t-\t-\t%s\n", netip.AddrPortFrom(x.Address, x.Port), cmp.Or(names[x.Address], "-"), x.Weight,
						missingState(*st, h.Desired, s.Service, x))
				}
			}
			tw.Flush()
		}
	}
}

// watcherState is the line on the director's watcher, and whether it is drift (a director with
// checks whose watcher is not running, or stale).
func watcherState(st protocol.Status, want protocol.State, now time.Time) (string, bool) {
	switch {
	case len(want.Checks) == 0:
		return "no health checks", false
	case st.Health == nil:
		return "watcher not running (no report): drift, tunplan apply starts it", true
	case !st.Fresh:
		return "watcher stale (last report " + st.Health.Heartbeat.UTC().Format(time.RFC3339) + "): drift, tunplan apply restarts it", true
	}
	return fmt.Sprintf("watcher running (pid %d), last report %.1fs ago", st.Health.PID, now.Sub(st.Health.Heartbeat).Seconds()), false
}

// planWeight is the plan's weight of d in service svc, and whether the plan has d there.
func planWeight(want protocol.State, svc protocol.Key, d protocol.DestinationStatus) (uint32, bool) {
	for _, x := range planDestinations(want, svc) {
		if x.Address == d.Address && x.Port == d.Port {
			return x.Weight, true
		}
	}
	return 0, false
}

// planDestinations are the plan's destinations of service svc.
func planDestinations(want protocol.State, svc protocol.Key) []protocol.Destination {
	for _, s := range want.Services {
		if s.Key() == svc {
			return s.Destinations
		}
	}
	return nil
}

// destinationState is a destination's STATE column (see status's help). The watcher's words are
// the host's text: escaped.
func destinationState(st protocol.Status, svc protocol.Key, d protocol.DestinationStatus, plan uint32, planned bool) string {
	if !planned {
		return "not in the plan (drift: run tunplan diff)"
	}
	at := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	if i := slices.IndexFunc(st.Drains, func(x protocol.Drain) bool {
		return x.Service == svc && x.Address == d.Address && x.Port == d.Port
	}); i >= 0 {
		x := st.Drains[i]
		return fmt.Sprintf("drained by %s since %s", remotetext.Escape(x.Actor), at(x.Since))
	}
	dh, failOpen := healthOf(st, svc, d.Address, d.Port)
	switch {
	case dh != nil && dh.Quiesced:
		return fmt.Sprintf("quiesced since %s: %s", at(dh.Since), remotetext.Escape(dh.Last))
	case d.Weight != plan:
		return fmt.Sprintf("drift: weight %d, the plan's is %d (run tunplan diff)", d.Weight, plan)
	case dh != nil && !dh.Healthy && failOpen:
		return fmt.Sprintf("failing, fail open (every destination fails) since %s: %s", at(dh.Since), remotetext.Escape(dh.Last))
	case dh != nil && !dh.Healthy:
		return fmt.Sprintf("failing since %s: %s", at(dh.Since), remotetext.Escape(dh.Last))
	case dh != nil:
		return "up: " + remotetext.Escape(dh.Last)
	}
	return "up"
}

// healthOf is what a fresh report of the watcher says of a destination (nil: nothing), and whether
// its service fails open.
func healthOf(st protocol.Status, svc protocol.Key, addr netip.Addr, port uint16) (*protocol.DestinationHealth, bool) {
	if st.Health == nil || !st.Fresh {
		return nil, false
	}
	for _, sh := range st.Health.Services {
		for i := range sh.Destinations {
			if x := &sh.Destinations[i]; sh.Service == svc && x.Address == addr && x.Port == port {
				return x, sh.FailOpen
			}
		}
	}
	return nil, false
}

// missingState is the STATE column of a plan's destination the kernel does not have: removed by
// the watcher (on_failure remove), or drift.
func missingState(st protocol.Status, want protocol.State, svc protocol.Key, d protocol.Destination) string {
	remove := slices.ContainsFunc(want.Checks, func(c protocol.HealthCheck) bool { return c.Service == svc && c.OnFailure == protocol.Remove })
	if dh, _ := healthOf(st, svc, d.Address, d.Port); remove && dh != nil && dh.Quiesced {
		return fmt.Sprintf("removed since %s: %s", dh.Since.UTC().Format(time.RFC3339), remotetext.Escape(dh.Last))
	}
	return "not in the kernel (drift: run tunplan diff)"
}

// bytesText is a byte count in SI units: "812B", "95.3kB", "1.2GB".
func bytesText(n uint64) string {
	if n < 1000 {
		return fmt.Sprintf("%dB", n)
	}
	f, unit := float64(n), 0
	for f >= 1000 && unit < 5 {
		f /= 1000
		unit++
	}
	return fmt.Sprintf("%.1f%cB", f, " kMGTP"[unit])
}

// renderStatusJSON writes every director's status:
//
//	{"directors": [{"host": "lvs01", "status": {…}}, {"host": "lvs02", "error": "…"}]}
func renderStatusJSON(w io.Writer, r *fleet.Run) error {
	type director struct {
		Host   string           `json:"host"`
		Status *protocol.Status `json:"status,omitempty"`
		Error  string           `json:"error,omitempty"`
	}
	out := struct {
		Directors []director `json:"directors"`
	}{Directors: []director{}}
	for _, h := range r.Hosts {
		if !h.Roles.Has(protocol.Director) {
			continue
		}
		d := director{Host: h.Name(), Status: h.StatusOf(fleet.Status)}
		if err := h.Err(); err != nil {
			d.Error = err.Error()
		}
		out.Directors = append(out.Directors, d)
	}
	return writeJSON(w, out)
}
