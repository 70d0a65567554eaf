package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/tunplan/tunplan/modules/protocol"
)

func newValidate(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check the plan without touching any host",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
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
			fmt.Fprintf(g.io.Out, "The plan is valid: %s, %s.\n", plural(len(hosts), "host"), plural(len(services), "virtual service"))
			return nil
		},
	}
}
