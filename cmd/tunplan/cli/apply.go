package cli

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/user"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/host"
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
	f, err := o.loadFleet()
	if err != nil {
		return err
	}
	defer f.close()
	if err := o.connectAll(f); err != nil {
		return err
	}
	runID, actor := newRunID(), actor()
	f.claimDiff(runID, actor, o.lockWait)
	hosts, t := collect(f.members)
	renderHuman(o.io, o.io.Out, hosts)
	if err := o.reportFailures(f); err != nil {
		return err
	}
	if t.total() == 0 {
		fmt.Fprintf(o.io.Out, "\nNo changes. %s the plan.\n", matchPhrase(len(f.members)))
		return nil
	}
	fmt.Fprintf(o.io.Out, "\nPlan: %s.\n", t)
	if !o.autoApprove {
		ok, err := o.confirm()
		if err != nil || !ok {
			return err
		}
	}
	return o.converge(f, runID, actor)
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

// converge applies in three phases so traffic never reaches a realserver that would drop it:
// realservers add → directors (everything) → realservers remove.
func (o *applyOptions) converge(f *fleet, runID, actor string) error {
	// Each phase goes only to the hosts that have changes of its kind, so a phase with nothing to do
	// does not overwrite what an earlier one reported.
	var directors, rsAdd, rsRemove []*member
	for _, m := range f.members {
		adds, removes := countKinds(m.resp.Changes)
		switch {
		case m.isDirector() && adds+removes > 0:
			directors = append(directors, m)
		case !m.isDirector():
			if adds > 0 {
				rsAdd = append(rsAdd, m)
			}
			if removes > 0 {
				rsRemove = append(rsRemove, m)
			}
		}
	}
	phase := func(ms []*member, p host.Phase) bool {
		f.request(ms, func(m *member) host.Request {
			return host.Request{Op: host.OpApply, Host: m.target.Name, Desired: m.desired, RunID: runID, Phase: p, Actor: actor, LockWaitMS: o.lockWait.Milliseconds()}
		})
		return len(f.failed()) == 0
	}
	ok := phase(rsAdd, host.PhaseAdd) && phase(directors, host.PhaseAll) && phase(rsRemove, host.PhaseRemove)
	fmt.Fprintln(o.io.Out)
	changed := 0
	for _, m := range f.members {
		switch {
		case m.err != nil:
			o.io.errorf("%v (outcome: %s)", m.err, outcomeOf(m))
		case m.resp.Outcome == "applied":
			changed++
			fmt.Fprintf(o.io.Out, "%s: applied, generation %d\n", m.target.Name, m.resp.Generation)
		}
	}
	if !ok {
		if o.atomic {
			return o.undo(f, runID, actor)
		}
		fmt.Fprintf(o.io.Out, "Apply failed: %s changed in this run (see above); failed hosts were restored to their snapshot unless stated otherwise.\n", plural(changed, "host"))
		return errReported
	}
	fmt.Fprintf(o.io.Out, "\nApply complete! %s changed.\n", plural(changed, "host"))
	return nil
}

// undo rolls back, for --atomic, every host this run changed to the generation it had before.
func (o *applyOptions) undo(f *fleet, runID, actor string) error {
	var changed []*member
	for _, m := range f.members {
		if m.err == nil && m.resp.Outcome == "applied" {
			changed = append(changed, m)
		}
	}
	f.request(changed, func(m *member) host.Request {
		return host.Request{Op: host.OpRollback, Host: m.target.Name, RunID: runID + "-undo", Actor: actor, LockWaitMS: o.lockWait.Milliseconds()}
	})
	var undone []string
	for _, m := range changed {
		if m.err != nil {
			o.io.errorf("%v: could not roll back this run's changes", m.err)
			continue
		}
		undone = append(undone, m.target.Name)
	}
	fmt.Fprintf(o.io.Out, "Apply failed (--atomic): rolled back %s changed in this run: %s.\n", plural(len(undone), "host"), strings.Join(undone, ", "))
	return errReported
}

// countKinds counts additions/updates and removals.
func countKinds(cs []change.Change) (adds, removes int) {
	for _, c := range cs {
		if c.Action == change.Delete {
			removes++
		} else {
			adds++
		}
	}
	return adds, removes
}

func outcomeOf(m *member) string {
	if m.resp.Outcome == "" {
		return "unknown: the helper did not answer"
	}
	return m.resp.Outcome
}

func newRunID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// actor names who runs tunplan, for the generations recorded on hosts.
func actor() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	h, _ := os.Hostname()
	return name + "@" + h
}
