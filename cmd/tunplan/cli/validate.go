package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tunplan/tunplan/modules/protocol"
)

func newValidate(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check the plan without touching any host",
		Long: `validate parses the plan, checks it, and builds the state every host would get, without
contacting any host. Every problem is reported at once as file:line:column with how to fix it;
warnings (a missing known_hosts file, a host no service uses) do not fail it.`,
		Example: `  tunplan validate -f tunplan.hcl
  tunplan validate --var vip=198.18.48.190 --json`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return validateRun(g) },
	}
	g.addPlanFlags(cmd)
	cmd.Flags().BoolVar(&g.json, "json", false, "write the result and the diagnostics as JSON")
	return cmd
}

func validateRun(g *globalOptions) error {
	hosts, err := g.selectHosts()
	if err != nil {
		return err
	}
	services := map[protocol.Key]bool{}
	for _, h := range hosts {
		for _, s := range h.Desired.Services {
			services[s.Key()] = true
		}
	}
	if g.json {
		return writeJSON(g.io.Out, struct {
			Status          string           `json:"status"`
			Hosts           int              `json:"hosts"`
			VirtualServices int              `json:"virtual_services"`
			Diagnostics     []diagnosticJSON `json:"diagnostics"`
		}{"valid", len(hosts), len(services), diagnosticsJSON(g.diags)})
	}
	fmt.Fprintf(g.io.Out, "The plan is valid: %s, %s.\n", plural(len(hosts), "host"), plural(len(services), "virtual service"))
	return nil
}
