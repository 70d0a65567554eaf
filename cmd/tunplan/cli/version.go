package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tunplan/tunplan/cmd/tunplan/helperbin"
)

// Set at build time by `make build` and `make release`: -ldflags "-X …/cli.Version=… -X …/cli.Commit=… -X …/cli.Date=…".
// Empty values are read from the Go build information (`go install …@v1.2.3` records the version,
// a build in a git checkout the commit and its time).
var Version, Commit, Date string

// buildInfo is tunplan's version, commit, build date and Go version.
type buildInfo struct{ version, commit, date, goVersion string }

func readBuildInfo() buildInfo {
	b := buildInfo{version: Version, commit: Commit, date: Date, goVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if b.version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			b.version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && b.commit == "":
				b.commit = s.Value
			case s.Key == "vcs.time" && b.date == "":
				b.date = s.Value
			}
		}
	}
	if b.version == "" {
		b.version = "dev"
	}
	b.commit = b.commit[:min(12, len(b.commit))]
	return b
}

// String is the first line of `tunplan version`: "tunplan v0.4.0 (commit 1a2b3c4d5e6f, built 2026-11-27T10:00:00Z, go1.26.8)".
func (b buildInfo) String() string {
	var parts []string
	for _, p := range []struct{ label, v string }{{"commit ", b.commit}, {"built ", b.date}, {"", b.goVersion}} {
		if p.v != "" {
			parts = append(parts, p.label+p.v)
		}
	}
	return fmt.Sprintf("tunplan %s (%s)", b.version, strings.Join(parts, ", "))
}

// helperLines lists the embedded helpers with their hashes, or says there are none.
func helperLines() string {
	helpers := helperbin.Versions()
	if len(helpers) == 0 {
		return "helpers: none embedded; " + helperbin.MissingFix + "\n"
	}
	archs := make([]string, 0, len(helpers))
	for a := range helpers {
		archs = append(archs, a)
	}
	sort.Strings(archs)
	var s strings.Builder
	for _, a := range archs {
		fmt.Fprintf(&s, "helper linux/%s sha256:%s\n", a, helpers[a])
	}
	return s.String()
}

func newVersion(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show tunplan's version, commit, build date, Go version and the embedded helpers' hashes",
		Example: `  tunplan version
  tunplan --version`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintf(g.io.Out, "%s\n%s", readBuildInfo(), helperLines())
			return nil
		},
	}
}
