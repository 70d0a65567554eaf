package cli

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"
	"github.com/tunplan/tunplan/inventory/fleet"
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
		Example: `  tunplan rollback --list
  tunplan rollback                   # undo the last run
  tunplan rollback --to 0 --hosts lvs01`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("to") && o.to < 0 {
				return fmt.Errorf("--to %d: want a generation number, 0 or more (tunplan rollback --list shows them)", o.to)
			}
			return rollbackRun(o)
		},
	}
	g.addHostFlags(cmd)
	cmd.Flags().IntVar(&o.to, "to", -1, "restore generation N instead of the previous one (0: the host before tunplan first changed it)")
	cmd.Flags().BoolVar(&o.list, "list", false, "list the generations recorded on each host and change nothing")
	g.addLockTimeout(cmd)
	return cmd
}

func rollbackRun(o *rollbackOptions) error {
	r, err := o.openRun()
	if err != nil {
		return err
	}
	defer r.Close()
	if err := o.reportFailures(r); err != nil {
		return err
	}
	if o.list {
		r.History()
		for _, h := range r.Hosts {
			if h.Err() != nil {
				continue
			}
			fmt.Fprintf(o.io.Out, "# %s\n", h.Name())
			for _, g := range h.Generations() {
				fmt.Fprintf(o.io.Out, "  %3d  %-8s  %s  %-24s  %s\n", g.N, g.Kind, g.Time, g.Actor, plural(g.Changes, "change"))
			}
		}
		return o.reportFailures(r)
	}
	targets := r.Hosts
	var to *int
	if o.to >= 0 {
		to = &o.to
	} else {
		r.History()
		if err := o.reportFailures(r); err != nil {
			return err
		}
		last, hosts, err := r.LastRun()
		if err != nil {
			return err
		}
		for _, h := range r.Hosts {
			if !slices.Contains(hosts, h) {
				fmt.Fprintf(o.io.Out, "%s: not changed by the last run (%s at %s): left alone\n", h.Name(), last.RunID, last.Time)
			}
		}
		targets = hosts
	}
	r.Rollback(targets, to)
	hosts, t := collect(targets, fleet.Rollback)
	renderHuman(o.io, o.io.Out, hosts)
	if err := o.reportFailures(r); err != nil {
		return err
	}
	fmt.Fprintf(o.io.Out, "\nRollback complete! %s.\n", t)
	return nil
}
