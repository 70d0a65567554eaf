package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tunplan/tunplan/inventory/fleet"
)

func newDiff(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "diff",
		Aliases: []string{"plan"},
		Short:   "Report where hosts drift from the plan (exit 0: match, 2: drift, 1: error)",
		Long: `diff reads every selected host's live kernel (IPVS, tunl0 and its addresses, sysctls, modules)
and shows what apply would change there, Terraform style: + add, ~ change, - remove. It changes
nothing and takes no lock. "plan" is another name for it.

Exit status: 0 when every host matches the plan, 2 when any drifts, 1 on an error (an invalid
plan, a host that cannot be read).`,
		Example: `  tunplan diff -f tunplan.hcl
  tunplan plan --hosts 'role:director'
  tunplan diff --json | jq '.hosts[] | select(.changes | length > 0) | .host'`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return diffRun(g) },
	}
	g.addHostFlags(cmd)
	cmd.Flags().BoolVar(&g.json, "json", false, "write the report (or the plan's diagnostics) as JSON")
	return cmd
}

func diffRun(g *globalOptions) error {
	r, err := g.openRun()
	if err != nil {
		return err
	}
	defer r.Close()
	r.Diff(false)
	hosts, t := collect(r.Hosts, fleet.Diff)
	failed := len(r.Failed())
	if g.json {
		if err := renderJSON(g.io.Out, hosts, t, failed, g.diags); err != nil {
			return err
		}
		if failed > 0 {
			return errReported
		}
	} else {
		renderHuman(g.io, g.io.Out, hosts)
		switch {
		case failed > 0:
			fmt.Fprintf(g.io.Out, "\n%s could not be read.\n", plural(failed, "host"))
		case t.total() == 0:
			fmt.Fprintf(g.io.Out, "\nNo drift: %s the plan.\n", matchPhrase(len(hosts)))
		default:
			fmt.Fprintf(g.io.Out, "\nDrift: %s to reach the plan.\n", t)
		}
		if err := g.reportFailures(r); err != nil {
			return err
		}
	}
	if t.total() > 0 {
		return exitCodeError{exitDrift}
	}
	return nil
}
