package cli

import (
	"fmt"
	"runtime/debug"
	"sort"

	"github.com/spf13/cobra"

	"github.com/tunplan/tunplan/cmd/tunplan/helperbin"
)

// Version is set at build time with -ldflags "-X …/cli.Version=…".
var Version = "dev"

func newVersion(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show tunplan's version and the hashes of the embedded helpers",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			v := Version
			if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" {
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" {
						v = "dev-" + s.Value[:min(12, len(s.Value))]
					}
				}
			}
			fmt.Fprintf(g.io.Out, "tunplan %s\n", v)
			helpers := helperbin.Versions()
			if len(helpers) == 0 {
				fmt.Fprintln(g.io.Out, "helper: none embedded (build with `make build`)")
			}
			archs := make([]string, 0, len(helpers))
			for a := range helpers {
				archs = append(archs, a)
			}
			sort.Strings(archs)
			for _, a := range archs {
				fmt.Fprintf(g.io.Out, "helper linux/%s sha256:%s\n", a, helpers[a])
			}
			return nil
		},
	}
}
