package cli

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/tunplan/tunplan/inventory/fleet"
)

type rollbackOptions struct {
	*globalOptions
	to   string // a run: its number in --list (0: before tunplan), its id or a prefix of it
	list bool
}

func newRollback(g *globalOptions) *cobra.Command {
	o := &rollbackOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "rollback",
		Short: "Undo the last run on the hosts it changed, or put hosts back as they were after run --to RUN",
		Long: `Every run that changes a host (apply, rollback) records the state tunplan manages there as a
numbered generation under /var/lib/tunplan; generation 0 is the host before tunplan first changed it.
Generation numbers are per host (a realserver added in the second run has it as its generation 1),
so rollback works with runs.

rollback with no --to undoes the last run that changed hosts: only the hosts that run changed are put
back to their previous generation; hosts it did not touch are left alone.

--list shows the runs recorded on the selected hosts, newest first: a number (1 is the newest), the
run's id, when it ended, its kind, who ran it, and the hosts it changed with the generation it made on
each. 0 is every host before tunplan.

--to RUN takes a run's number from --list, its id, or the first 4 or more characters of its id, and
puts every selected host back to its state as of that run: its newest generation made by that run or
an earlier one. A host the run did not yet know goes back to its generation 0; a host already there
is left alone. --to 0 puts every host back to before tunplan.

A rollback is recorded as a new run, so it can itself be rolled back.`,
		Example: `  tunplan rollback --list
  tunplan rollback                   # undo the last run
  tunplan rollback --to 2            # back to the state after the run numbered 2 in --list
  tunplan rollback --to 9f2c4e1a     # the same, by (the start of) the run's id
  tunplan rollback --to 0 --hosts lvs01`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("to") && strings.HasPrefix(strings.TrimSpace(o.to), "-") {
				return fmt.Errorf("--to %s: want a run: its number from tunplan rollback --list (0 or more) or its id", o.to)
			}
			return rollbackRun(o, cmd.Flags().Changed("to"))
		},
	}
	g.addHostFlags(cmd)
	cmd.Flags().StringVar(&o.to, "to", "", "put hosts back as they were after run `RUN`: its number from --list (0: before tunplan), its id, or 4+ characters of its id")
	cmd.Flags().BoolVar(&o.list, "list", false, "list the runs recorded on the selected hosts, newest first, and change nothing")
	cmd.MarkFlagsMutuallyExclusive("list", "to")
	g.addLockTimeout(cmd)
	return cmd
}

func rollbackRun(o *rollbackOptions, to bool) error {
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
		renderRuns(o.io.Out, r.Runs())
		return o.reportFailures(r)
	}
	r.History()
	if err := o.reportFailures(r); err != nil {
		return err
	}
	if to {
		return rollbackTo(o, r)
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
	r.Rollback(hosts, nil)
	return o.finishRollback(r, hosts)
}

// rollbackTo puts every selected host back as it was after the run --to names.
func rollbackTo(o *rollbackOptions, r *fleet.Run) error {
	runs := r.Runs()
	targets, run, err := r.Targets(o.to)
	if err != nil {
		if len(runs) == 0 {
			return fmt.Errorf("--to %s: %v", o.to, err)
		}
		var b strings.Builder
		renderRuns(&b, runs)
		return fmt.Errorf("--to %s: %v; the runs, newest first:\n%s", o.to, err, strings.TrimRight(b.String(), "\n"))
	}
	what := "before tunplan: every host to its generation 0"
	if run.ID != "" {
		n := slices.IndexFunc(runs, func(ri fleet.RunInfo) bool { return ri.ID == run.ID }) + 1
		what = fmt.Sprintf("the state after run %d: %s (%s at %s by %s)", n, run.ID, run.Kind, run.Time, run.Actor)
	}
	fmt.Fprintf(o.io.Out, "Rolling back to %s.\n", what)
	var hosts []*fleet.HostRun
	for _, h := range r.Hosts {
		latest := -1
		for _, g := range h.Generations() {
			latest = max(latest, g.N)
		}
		n, ok := targets[h]
		switch {
		case ok:
			hosts = append(hosts, h)
			fmt.Fprintf(o.io.Out, "%s: generation %d => %d\n", h.Name(), latest, n)
		case latest < 0:
			fmt.Fprintf(o.io.Out, "%s: tunplan has not changed it: left alone\n", h.Name())
		default:
			fmt.Fprintf(o.io.Out, "%s: already at generation %d: left alone\n", h.Name(), latest)
		}
	}
	if len(hosts) == 0 {
		fmt.Fprintln(o.io.Out, "\nNothing to roll back.")
		return nil
	}
	fmt.Fprintln(o.io.Out)
	r.RollbackTo(targets)
	return o.finishRollback(r, hosts)
}

func (o *rollbackOptions) finishRollback(r *fleet.Run, targets []*fleet.HostRun) error {
	hosts, t := collect(targets, fleet.Rollback)
	renderHuman(o.io, o.io.Out, hosts)
	if err := o.reportFailures(r); err != nil {
		return err
	}
	fmt.Fprintf(o.io.Out, "\nRollback complete! %s.\n", t)
	return nil
}

// renderRuns writes rollback --list, newest run first, and last the state before tunplan:
//
//	#  RUN               TIME                  KIND   BY          HOSTS CHANGED (generation)
//	1  bbbb2222bbbb2222  2026-11-25T02:00:00Z  apply  alice@ops1  beijing (1), lvs01 (2)
//	2  aaaa1111aaaa1111  2026-11-25T01:00:00Z  apply  alice@ops1  lvs01 (1), shanghai (1)
//	0  before tunplan                                             every host (0)
func renderRuns(w io.Writer, runs []fleet.RunInfo) {
	if len(runs) == 0 {
		fmt.Fprintln(w, "No runs: tunplan has not changed these hosts.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\tRUN\tTIME\tKIND\tBY\tHOSTS CHANGED (generation)")
	for i, ri := range runs {
		var hosts []string
		for _, h := range slices.Sorted(maps.Keys(ri.Hosts)) {
			hosts = append(hosts, fmt.Sprintf("%s (%d)", h, ri.Hosts[h]))
		}
		fmt.Fprintf(tw, "%3d\t%s\t%s\t%s\t%s\t%s\n", i+1, ri.ID, ri.Time, ri.Kind, ri.Actor, strings.Join(hosts, ", "))
	}
	fmt.Fprintf(tw, "%3d\t%s\t\t\t\t%s\n", 0, "before tunplan", "every host (0)")
	tw.Flush()
}
