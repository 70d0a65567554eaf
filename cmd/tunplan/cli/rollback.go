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
		Long: `Before every apply the helper records the state it manages on the host as a numbered generation
under /var/lib/tunplan. rollback makes the host match an earlier generation again, removing what later
applies added, and records that as a new generation (so a rollback can itself be rolled back).`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return rollbackRun(o) },
	}
	cmd.Flags().IntVar(&o.to, "to", -1, "restore generation N instead of the previous one (0: the host before tunplan first changed it)")
	cmd.Flags().BoolVar(&o.list, "list", false, "list the generations recorded on each host and change nothing")
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
	var to *int
	if o.to >= 0 {
		to = &o.to
	}
	runID, who := newRunID(), actor()
	f.request(f.members, func(m *member) host.Request {
		return host.Request{Op: host.OpRollback, Host: m.target.Name, To: to, RunID: runID, Actor: who}
	})
	hosts, t := collect(f.members)
	renderHuman(o.io, o.io.Out, hosts)
	if err := o.reportFailures(f); err != nil {
		return err
	}
	fmt.Fprintf(o.io.Out, "\nRollback complete! %s.\n", t)
	return nil
}
