package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tunplan/tunplan/internal/remotetext"
	"github.com/tunplan/tunplan/inventory/fleet"
	"github.com/tunplan/tunplan/modules/protocol"
)

type drainOptions struct {
	*globalOptions
	undo    bool
	wait    bool
	timeout time.Duration
}

// drainPoll is how often drain --wait reads the connections left.
const drainPoll = time.Second

func newDrain(g *globalOptions, undo bool) *cobra.Command {
	o := &drainOptions{globalOptions: g, undo: undo}
	cmd := &cobra.Command{
		Use:   "drain REALSERVER",
		Short: "Take a realserver out of every service on its directors (weight 0) until undrain; --wait for its connections to end",
		Long: `drain sets the weight of REALSERVER's destination to 0 in every service of the plan that names it, on
each (selected) director of those services, and records it there as an operator's drain: no new
connection goes to it, established ones finish. A drain is runtime state, not the plan's: it holds
until tunplan undrain, across apply (which leaves it, and diff shows it as held, not drift), the
health checks' watcher and a reboot of the director.

With --wait, drain then waits until no director counts an active connection to it (IPVS's
ActiveConn: established and not yet closed by the client), or fails after --timeout. Inactive
entries (closing TCP connections, UDP flows) are not waited for: IPVS keeps them until they time
out, without sending the realserver anything new.`,
		Example: `  tunplan drain rs1 --wait --timeout 10m
  tunplan undrain rs1`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error { return drainRun(o, args[0]) },
	}
	if undo {
		cmd.Use = "undrain REALSERVER"
		cmd.Short = "Give a drained realserver its weight back on every director (the plan's, unless its health checks hold it at 0)"
		cmd.Long = `undrain forgets the drain of REALSERVER on each (selected) director of its services and gives its
destination its effective weight back: the plan's, unless the director's watcher holds it at 0
because it fails its health checks (then it comes back when it passes them).`
		cmd.Example = `  tunplan undrain rs1`
	}
	g.addHostFlags(cmd)
	g.addLockTimeout(cmd)
	if !undo {
		cmd.Flags().BoolVar(&o.wait, "wait", false, "wait until no director counts an active connection to the realserver")
		cmd.Flags().DurationVar(&o.timeout, "timeout", 10*time.Minute, "with --wait, fail when connections are still active after this long")
	}
	return cmd
}

func drainRun(o *drainOptions, realserver string) error {
	r, err := o.openDirectors()
	if err != nil {
		return err
	}
	defer r.Close()
	drains, err := o.plan.Drains(realserver)
	if err != nil {
		return err
	}
	directors := 0
	for _, h := range r.Hosts {
		if len(drains[h.Name()]) > 0 {
			directors++
		}
	}
	if directors == 0 {
		return fmt.Errorf("no selected director carries a service of %s: nothing to %s", realserver, verb(o.undo))
	}
	if err := o.reportFailures(r); err != nil {
		return err // a director that cannot be reached: none is changed
	}
	phase := fleet.Drain
	if o.undo {
		phase = fleet.Undrain
	}
	r.Drain(drains, o.undo)
	for _, h := range r.Hosts {
		if h.Err() != nil || len(drains[h.Name()]) == 0 {
			continue
		}
		cs := h.Changes(phase)
		fmt.Fprintf(o.io.Out, "# %s: %s\n", h.Name(), plural(len(cs), "weight changed"))
		for _, c := range cs {
			fmt.Fprintf(o.io.Out, "  %c %s  %s\n", c.Action, remotetext.Escape(c.Address), remotetext.Escape(c.Shown()))
		}
		if o.undo {
			renderHeld(o.io, o.io.Out, heldOf(h.StatusOf(phase), h.Desired, drains[h.Name()]))
		}
	}
	if err := o.reportFailures(r); err != nil {
		return err
	}
	if o.undo {
		fmt.Fprintf(o.io.Out, "\n%s undrained on %s.\n", realserver, plural(directors, "director"))
		return nil
	}
	fmt.Fprintf(o.io.Out, "\n%s drained on %s: weight 0 until tunplan undrain %s.\n", realserver, plural(directors, "director"), realserver)
	if o.wait {
		return o.waitDrained(r, drains, realserver)
	}
	return nil
}

// heldOf are the undrained destinations that a director's watcher still holds at weight 0, from
// the director's status after the undrain.
func heldOf(st *protocol.Status, want protocol.State, drains []protocol.Drain) []protocol.Held {
	if st == nil {
		return nil
	}
	var out []protocol.Held
	for _, d := range drains {
		if dh, _ := healthOf(*st, d.Service, d.Address, d.Port); dh != nil && dh.Quiesced {
			w, _ := planWeight(want, d.Service, protocol.DestinationStatus{Address: d.Address, Port: d.Port})
			out = append(out, protocol.Held{Service: d.Service, Address: d.Address, Port: d.Port, Weight: w, By: protocol.HeldByHealth, Since: dh.Since, Reason: dh.Last})
		}
	}
	return out
}

// waitDrained polls the directors until none counts an active connection to the drained
// destinations, telling the count each time it changes.
func (o *drainOptions) waitDrained(r *fleet.Run, drains map[string][]protocol.Drain, realserver string) error {
	deadline := time.Now().Add(o.timeout)
	last := -1
	for {
		r.Status()
		if err := o.reportFailures(r); err != nil {
			return err
		}
		n := activeConns(r, drains)
		if n == 0 {
			fmt.Fprintf(o.io.Out, "No active connection to %s is left.\n", realserver)
			return nil
		}
		if n != last {
			fmt.Fprintf(o.io.Out, "Waiting for %s to %s…\n", plural(n, "active connection"), realserver)
			last = n
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s to %s still after %v (--timeout); it stays drained", plural(n, "active connection"), realserver, o.timeout)
		}
		time.Sleep(drainPoll)
	}
}

// activeConns counts the active connections the directors report to the drained destinations.
func activeConns(r *fleet.Run, drains map[string][]protocol.Drain) int {
	n := 0
	for _, h := range r.Hosts {
		st := h.StatusOf(fleet.Status)
		if st == nil {
			continue
		}
		for _, d := range drains[h.Name()] {
			for _, s := range st.Services {
				for _, x := range s.Destinations {
					if s.Service == d.Service && x.Address == d.Address && x.Port == d.Port {
						n += int(x.ActiveConns)
					}
				}
			}
		}
	}
	return n
}

func verb(undo bool) string {
	if undo {
		return "undrain"
	}
	return "drain"
}
