// Package cli holds tunplan's commands: one file per verb, each with its options struct, a
// constructor that wires flags, and a run function that only talks through IOStreams.
package cli

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"
	"github.com/tunplan/tunplan/cmd/tunplan/helperbin"
	"github.com/tunplan/tunplan/inventory/fleet"
	"github.com/tunplan/tunplan/plans"
)

// Exit codes, as diff documents them.
const (
	exitOK    = 0
	exitError = 1
	exitDrift = 2
)

// exitCodeError carries a non-zero exit code that is not a failure to report (diff's drift).
type exitCodeError struct{ code int }

func (e exitCodeError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// errReported marks an error whose details the command has already written.
var errReported = errors.New("failed")

// globalOptions are the flags the commands share: the plan's (every command but version and fmt)
// and how to reach hosts (the commands that do).
type globalOptions struct {
	io       *IOStreams
	connect  fleet.Connector
	ready    func() error // nil, or fails when this tunplan cannot serve hosts (no helpers embedded)
	file     string
	hosts    []string
	vars     []string
	parallel int
	lockWait time.Duration   // apply and rollback: --lock-timeout
	json     bool            // validate, diff, apply: --json
	diags    hcl.Diagnostics // the loaded plan's warnings, for a JSON document
	plan     *plans.Plan     // the loaded plan, for commands that need more of it than its hosts
}

// addPlanFlags registers the flags that choose the plan and its hosts.
func (g *globalOptions) addPlanFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&g.file, "file", "f", "tunplan.hcl", "the plan file")
	f.StringSliceVar(&g.hosts, "hosts", nil, "limit the run to these hosts: plan names, globs (\"shanghai-*\") or roles (\"role:director\"), comma-separated")
	f.StringArrayVar(&g.vars, "var", nil, "set a plan variable: --var name=value (repeatable)")
}

// addHostFlags registers the plan's flags and those of a command that contacts hosts.
func (g *globalOptions) addHostFlags(cmd *cobra.Command) {
	g.addPlanFlags(cmd)
	cmd.Flags().IntVar(&g.parallel, "parallel", 5, "how many hosts to work on at once (default: $TUNPLAN_PARALLEL, else 5)")
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error { return g.checkParallel(cmd) }
}

// addLockTimeout registers --lock-timeout on a command that changes hosts.
func (g *globalOptions) addLockTimeout(cmd *cobra.Command) {
	cmd.Flags().DurationVar(&g.lockWait, "lock-timeout", 0, "wait this long (e.g. 30s) for another run's lock on a host instead of failing at once")
}

// checkParallel refuses a parallelism that would work on no host, from the flag or, when the flag
// is not given, from TUNPLAN_PARALLEL (Ansible's forks).
func (g *globalOptions) checkParallel(cmd *cobra.Command) error {
	if !cmd.Flags().Changed("parallel") {
		if v, ok := os.LookupEnv("TUNPLAN_PARALLEL"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 1 {
				return fmt.Errorf("TUNPLAN_PARALLEL=%q: want a whole number of hosts, 1 or more", v)
			}
			g.parallel = n
		}
	}
	if g.parallel < 1 {
		return fmt.Errorf("--parallel %d: want a whole number of hosts, 1 or more", g.parallel)
	}
	return nil
}

// Main runs tunplan with args and returns the process exit code.
func Main(io *IOStreams, args []string) int {
	return run(io, SSH, helperbin.Check, args)
}

func run(io *IOStreams, connect fleet.Connector, ready func() error, args []string) int {
	root := newRoot(io, connect, ready)
	root.SetArgs(args)
	err := root.Execute()
	var ec exitCodeError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ec):
		return ec.code
	case errors.Is(err, errReported):
		return exitError
	}
	io.errorf("%v", err)
	return exitError
}

func newRoot(io *IOStreams, connect fleet.Connector, ready func() error) *cobra.Command {
	g := &globalOptions{io: io, connect: connect, ready: ready}
	root := &cobra.Command{
		Use:   "tunplan",
		Short: "Make LVS-TUN directors and realservers match a plan",
		Long: `tunplan reads an HCL plan of directors, realservers and virtual services, reaches every host
over SSH, and makes its kernel match the plan: ipip, tunl0 with the VIP, sysctls and IPVS.`,
		Version:       readBuildInfo().String(),
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetVersionTemplate("{{.Version}}\n" + helperLines())
	root.SetOut(io.Out)
	root.SetErr(io.ErrOut)
	root.AddCommand(newApply(g), newDestroy(g), newDiff(g), newRollback(g), newValidate(g), newFmt(g), newVersion(g), newImport(g), newVerify(g), newDoctor(g), newStatus(g), newDrain(g, false), newDrain(g, true))
	return root
}

func (g *globalOptions) varMap() (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range g.vars {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--var %q: want name=value", kv)
		}
		out[k] = v
	}
	return out, nil
}
