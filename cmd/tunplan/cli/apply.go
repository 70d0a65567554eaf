package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tunplan/tunplan/inventory/fleet"
	"github.com/tunplan/tunplan/modules/protocol"
)

type applyOptions struct {
	*globalOptions
	autoApprove bool
	atomic      bool
}

func newApply(g *globalOptions) *cobra.Command {
	o := &applyOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Show the changes per host, then make the hosts match the plan",
		Long: `apply reads every host's current state, shows what it would change, asks for confirmation, and
converges the hosts: realservers are given new VIPs before directors send them traffic, and
directors stop sending traffic before realservers lose a VIP. Each host's helper snapshots what it
manages first and restores that snapshot if a change fails.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return applyRun(o) },
	}
	cmd.Flags().BoolVar(&o.autoApprove, "auto-approve", false, "apply without asking for confirmation")
	cmd.Flags().BoolVar(&o.atomic, "atomic", false, "if any host fails, roll back every host this run changed")
	g.addLockTimeout(cmd)
	return cmd
}

func applyRun(o *applyOptions) error {
	r, err := o.openRun()
	if err != nil {
		return err
	}
	defer r.Close()
	if err := o.reportFailures(r); err != nil {
		return err
	}
	r.Diff(true)
	hosts, t := collect(r.Hosts, fleet.Diff)
	renderHuman(o.io, o.io.Out, hosts)
	if err := o.reportFailures(r); err != nil {
		return err
	}
	if t.total() == 0 {
		fmt.Fprintf(o.io.Out, "\nNo changes. %s the plan.\n", matchPhrase(len(r.Hosts)))
		return nil
	}
	fmt.Fprintf(o.io.Out, "\nPlan: %s.\n", t)
	if !o.autoApprove {
		ok, err := o.confirm()
		if err != nil || !ok {
			return err
		}
	}
	ok := r.Apply(o.atomic)
	o.report(r, ok)
	if !ok {
		return errReported
	}
	return nil
}

func (o *applyOptions) confirm() (bool, error) {
	if !o.io.Interactive {
		return false, fmt.Errorf("standard input is not a terminal: run with --auto-approve to apply without confirmation")
	}
	fmt.Fprint(o.io.Out, "\nDo you want to apply these changes? Only 'yes' will be accepted: ")
	line, _ := o.io.In.ReadString('\n')
	if strings.TrimSpace(line) != "yes" {
		fmt.Fprintln(o.io.Out, "Apply cancelled.")
		return false, nil
	}
	return true, nil
}

// report tells what the apply did on each host: the generation it made, or why it failed, and for
// --atomic which hosts were rolled back.
func (o *applyOptions) report(r *fleet.Run, ok bool) {
	fmt.Fprintln(o.io.Out)
	changed := 0
	for _, h := range r.Hosts {
		gen, applied := h.Applied()
		if applied {
			changed++
		}
		switch err := h.Err(); {
		case err != nil:
			if _, undone := h.Result(fleet.Undo); undone {
				o.io.errorf("%v: could not roll back this run's changes", err)
			} else {
				o.io.errorf("%v (outcome: %s)", err, outcomeOf(h))
			}
		case applied:
			fmt.Fprintf(o.io.Out, "%s: applied, generation %d\n", h.Name(), gen)
		}
	}
	switch {
	case ok:
		fmt.Fprintf(o.io.Out, "\nApply complete! %s changed.\n", plural(changed, "host"))
	case o.atomic:
		var undone []string
		for _, h := range r.Hosts {
			if res, ok := h.Result(fleet.Undo); ok && res.Err == nil {
				undone = append(undone, h.Name())
			}
		}
		fmt.Fprintf(o.io.Out, "Apply failed (--atomic): rolled back %s changed in this run: %s.\n", plural(len(undone), "host"), strings.Join(undone, ", "))
	default:
		fmt.Fprintf(o.io.Out, "Apply failed: %s changed in this run (see above); failed hosts were restored to their snapshot unless stated otherwise.\n", plural(changed, "host"))
	}
}

func outcomeOf(h *fleet.HostRun) string {
	if o := h.Outcome(); o != protocol.OutcomeNone {
		return string(o)
	}
	return "unknown: the helper did not answer"
}
