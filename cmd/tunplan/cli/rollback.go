package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tunplan/tunplan/modules/host"
)

type rollbackOptions struct {
	*globalOptions
	to   int
	list bool
}

func newRollback(g *globalOptions) *cobra.Command {
	o := &rollbackOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "rollback",
		Short: "Restore the state a host had before the last apply (or generation --to N)",
		Long: `Every apply records the state tunplan manages on each host it changed as a numbered generation
under /var/lib/tunplan (generation 0 is the host before tunplan first changed it). rollback undoes the
last run that changed hosts: only the hosts that run changed are put back to their previous
generation; hosts it did not touch are left alone. --to N puts every selected host back to its
generation N. A rollback is recorded as a new generation, so it can itself be rolled back.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return rollbackRun(o) },
	}
	cmd.Flags().IntVar(&o.to, "to", -1, "restore generation N instead of the previous one (0: the host before tunplan first changed it)")
	cmd.Flags().BoolVar(&o.list, "list", false, "list the generations recorded on each host and change nothing")
	g.addLockTimeout(cmd)
	return cmd
}

func rollbackRun(o *rollbackOptions) error {
	f, err := o.loadFleet()
	if err != nil {
		return err
	}
	defer f.close()
	if err := o.connectAll(f); err != nil {
		return err
	}
	if o.list {
		f.request(f.members, func(m *member) host.Request { return host.Request{Op: host.OpHistory, Host: m.target.Name} })
		for _, m := range live(f.members) {
			fmt.Fprintf(o.io.Out, "# %s\n", m.target.Name)
			for _, g := range m.resp.Generations {
				fmt.Fprintf(o.io.Out, "  %3d  %-8s  %s  %-24s  %s\n", g.N, g.Kind, g.Time, g.Actor, plural(g.Changes, "change"))
			}
		}
		return o.reportFailures(f)
	}
	targets := f.members
	var to *int
	if o.to >= 0 {
		to = &o.to
	} else if targets, err = o.lastRun(f); err != nil {
		return err
	}
	runID, who := newRunID(), actor()
	f.request(targets, func(m *member) host.Request {
		return host.Request{Op: host.OpRollback, Host: m.target.Name, To: to, RunID: runID, Actor: who, LockWaitMS: o.lockWait.Milliseconds()}
	})
	hosts, t := collect(targets)
	renderHuman(o.io, o.io.Out, hosts)
	if err := o.reportFailures(f); err != nil {
		return err
	}
	fmt.Fprintf(o.io.Out, "\nRollback complete! %s.\n", t)
	return nil
}

// lastRun finds the newest run that changed any selected host and returns the hosts it changed.
func (o *rollbackOptions) lastRun(f *fleet) ([]*member, error) {
	f.request(f.members, func(m *member) host.Request { return host.Request{Op: host.OpHistory, Host: m.target.Name} })
	if err := o.reportFailures(f); err != nil {
		return nil, err
	}
	var last host.Generation
	for _, m := range f.members {
		if g := latestGeneration(m); g != nil && g.N > 0 && (g.Time > last.Time || (g.Time == last.Time && g.RunID > last.RunID)) {
			last = *g
		}
	}
	if last.RunID == "" {
		return nil, fmt.Errorf("nothing to roll back: tunplan has not changed any of these hosts")
	}
	var out []*member
	for _, m := range f.members {
		if g := latestGeneration(m); g != nil && g.RunID == last.RunID {
			out = append(out, m)
		} else {
			fmt.Fprintf(o.io.Out, "%s: not changed by the last run (%s at %s): left alone\n", m.target.Name, last.RunID, last.Time)
		}
	}
	return out, nil
}

func latestGeneration(m *member) *host.Generation {
	if n := len(m.resp.Generations); n > 0 {
		return &m.resp.Generations[n-1]
	}
	return nil
}
