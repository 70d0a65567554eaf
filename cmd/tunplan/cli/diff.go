package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tunplan/tunplan/inventory/fleet"
)

type diffOptions struct {
	*globalOptions
	json bool
}

func newDiff(g *globalOptions) *cobra.Command {
	o := &diffOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "diff",
		Short: "Report where hosts drift from the plan (exit 0: match, 2: drift, 1: error)",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return diffRun(o) },
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "write the report as JSON")
	return cmd
}

func diffRun(o *diffOptions) error {
	r, err := o.openRun()
	if err != nil {
		return err
	}
	defer r.Close()
	r.Diff(false)
	hosts, t := collect(r.Hosts, fleet.Diff)
	if o.json {
		if err := renderJSON(o.io.Out, hosts, t); err != nil {
			return err
		}
	} else {
		renderHuman(o.io, o.io.Out, hosts)
		switch {
		case len(r.Failed()) > 0:
			fmt.Fprintf(o.io.Out, "\n%s could not be read.\n", plural(len(r.Failed()), "host"))
		case t.total() == 0:
			fmt.Fprintf(o.io.Out, "\nNo drift: %s the plan.\n", matchPhrase(len(hosts)))
		default:
			fmt.Fprintf(o.io.Out, "\nDrift: %s to reach the plan.\n", t)
		}
	}
	if err := o.reportFailures(r); err != nil {
		return err
	}
	if t.total() > 0 {
		return exitCodeError{exitDrift}
	}
	return nil
}
