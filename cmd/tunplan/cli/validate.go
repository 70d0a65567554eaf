package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newValidate(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check the plan without touching any host",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			f, err := g.loadFleet()
			if err != nil {
				return err
			}
			services := map[string]bool{}
			for _, m := range f.members {
				for _, s := range m.desired.Services {
					services[fmt.Sprintf("%s/%s:%d", s.Protocol, s.Address, s.Port)] = true
				}
			}
			fmt.Fprintf(g.io.Out, "The plan is valid: %s, %s.\n", plural(len(f.members), "host"), plural(len(services), "virtual service"))
			return nil
		},
	}
}
