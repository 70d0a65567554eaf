package cli

import (
	"fmt"
	"strings"

	"github.com/fatih/color"
	"github.com/spf13/cobra"

	"github.com/tunplan/tunplan/inventory/fleet"
	"github.com/tunplan/tunplan/modules/protocol"
)

type applyOptions struct {
	*globalOptions
	autoApprove bool
	atomic      bool
	exitCode    bool
	verify      bool
}

// exitChanged is apply --exit-code's status when the run changed hosts.
const exitChanged = 2

func newApply(g *globalOptions) *cobra.Command {
	o := &applyOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Show the changes per host, then make the hosts match the plan",
		Long: `apply reads every host's current state, shows what it would change, asks for confirmation, and
converges the hosts: realservers are given new VIPs before directors send them traffic, and
directors stop sending traffic before realservers lose a VIP. Each host's helper snapshots what it
manages first and restores that snapshot if a change fails.

--verify then runs tunplan verify on the hosts (see tunplan verify --help); with --atomic, a failed
verify rolls back every host this run changed, and says so.

Exit status: 0 on success (with --exit-code: 0 when nothing needed changing, 2 when hosts were
changed), 1 on an error or a failed --verify.`,
		Example: `  tunplan apply -f tunplan.hcl
  tunplan apply --auto-approve --atomic --hosts 'shanghai-*,role:director'
  tunplan apply --auto-approve --json > result.json
  tunplan apply --auto-approve --verify --atomic`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if o.json && !o.autoApprove {
				return fmt.Errorf("--json needs --auto-approve: apply cannot ask for confirmation in a JSON report")
			}
			return applyRun(o)
		},
	}
	g.addHostFlags(cmd)
	cmd.Flags().BoolVar(&o.autoApprove, "auto-approve", false, "apply without asking for confirmation")
	cmd.Flags().BoolVar(&o.atomic, "atomic", false, "if any host fails, roll back every host this run changed")
	cmd.Flags().BoolVar(&o.exitCode, "exit-code", false, "exit 2 when hosts were changed, 0 when nothing needed changing")
	cmd.Flags().BoolVar(&o.verify, "verify", false, "then verify that every destination answers through the tunnel (with --atomic, roll back if not)")
	cmd.Flags().BoolVar(&g.json, "json", false, "write the result of every host and phase (or the plan's diagnostics) as JSON; needs --auto-approve")
	g.addLockTimeout(cmd)
	return cmd
}

func applyRun(o *applyOptions) error {
	r, err := o.openRun()
	if err != nil {
		return err
	}
	defer r.Close()
	if len(r.Failed()) > 0 { // hosts that cannot be reached: nothing is diffed or changed
		return o.finish(r, false)
	}
	r.Diff(true)
	if !o.json {
		hosts, t := collect(r.Hosts, fleet.Diff)
		renderHuman(o.io, o.io.Out, hosts)
		if len(r.Failed()) == 0 && t.total() > 0 {
			fmt.Fprintf(o.io.Out, "\nPlan: %s.\n", t)
		}
	}
	if len(r.Failed()) > 0 || r.Pending() == 0 {
		return o.finish(r, false)
	}
	if !o.autoApprove {
		ok, err := o.io.confirm("apply", "Do you want to apply these changes?", "Apply cancelled.")
		if err != nil || !ok {
			return err
		}
	}
	r.Apply(o.atomic)
	return o.finish(r, true)
}

// finish reports the run (applied: whether any apply phase was sent) and returns its exit.
func (o *applyOptions) finish(r *fleet.Run, applied bool) error {
	failed := len(r.Failed()) > 0
	var v *applyVerification
	if o.verify && !failed {
		v = o.verifyApplied(r)
	}
	changed := 0
	for _, h := range r.Hosts {
		if _, c := h.Applied(); c {
			changed++
		}
	}
	switch {
	case o.json:
		if err := renderApplyJSON(o.io.Out, r, o.diags, v.report(r)); err != nil {
			return err
		}
	case applied:
		o.report(r, !failed, changed)
	case failed:
		_ = o.reportFailures(r)
	default:
		fmt.Fprintf(o.io.Out, "\nNo changes. %s the plan.\n", matchPhrase(len(r.Hosts)))
	}
	if v != nil && !o.json {
		o.reportVerify(r, v)
	}
	switch {
	case failed, v != nil && v.failed:
		return errReported
	case o.exitCode && changed > 0:
		return exitCodeError{exitChanged}
	}
	return nil
}

// report tells what the apply did on each host: the generation it made, or why it failed, and for
// --atomic which hosts were rolled back.
func (o *applyOptions) report(r *fleet.Run, ok bool, changed int) {
	fmt.Fprintln(o.io.Out)
	for _, h := range r.Hosts {
		gen, applied := h.Applied()
		switch err := h.ErrBeforeVerify(); {
		case err != nil:
			if _, undone := h.Result(fleet.Undo); undone {
				o.io.errorf("%v: could not roll back this run's changes", err)
			} else {
				o.io.errorf("%v (outcome: %s)", err, outcomeOf(h))
			}
		case applied:
			fmt.Fprintf(o.io.Out, "%s: applied, generation %d\n", h.Name(), gen)
		}
		for _, w := range h.Warnings() {
			fmt.Fprintf(o.io.Out, "%s\n", o.io.paint(color.FgYellow)("! "+h.Name()+": warning: "+w))
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
