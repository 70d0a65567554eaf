// Package cli holds tunplan's commands: one file per verb, each with its options struct, a
// constructor that wires flags, and a run function that only talks through IOStreams.
package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/tunplan/tunplan/inventory/fleet"
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

// globalOptions are the flags every command takes.
type globalOptions struct {
	io       *IOStreams
	connect  fleet.Connector
	file     string
	hosts    []string
	vars     []string
	parallel int
	lockWait time.Duration // apply and rollback: --lock-timeout
}

// addLockTimeout registers --lock-timeout on a command that changes hosts.
func (g *globalOptions) addLockTimeout(cmd *cobra.Command) {
	cmd.Flags().DurationVar(&g.lockWait, "lock-timeout", 0, "wait this long (e.g. 30s) for another run's lock on a host instead of failing at once")
}

// Main runs tunplan with args and returns the process exit code.
func Main(io *IOStreams, args []string) int {
	return run(io, SSH, args)
}

func run(io *IOStreams, connect fleet.Connector, args []string) int {
	root := newRoot(io, connect)
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

func newRoot(io *IOStreams, connect fleet.Connector) *cobra.Command {
	g := &globalOptions{io: io, connect: connect}
	root := &cobra.Command{
		Use:   "tunplan",
		Short: "Make LVS-TUN directors and realservers match a plan",
		Long: `tunplan reads an HCL plan of directors, realservers and virtual services, reaches every host
over SSH, and makes its kernel match the plan: ipip, tunl0 with the VIP, sysctls and IPVS.`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(io.Out)
	root.SetErr(io.ErrOut)
	pf := root.PersistentFlags()
	pf.StringVarP(&g.file, "file", "f", "tunplan.hcl", "the plan file")
	pf.StringSliceVar(&g.hosts, "hosts", nil, "limit the run to these hosts (comma-separated plan names)")
	pf.StringArrayVar(&g.vars, "var", nil, "set a plan variable: --var name=value (repeatable)")
	pf.IntVar(&g.parallel, "parallel", defaultParallel(), "how many hosts to work on at once")
	root.AddCommand(newApply(g), newDiff(g), newRollback(g), newValidate(g), newVersion(g))
	return root
}

// defaultParallel is Ansible's default fork count, overridable with TUNPLAN_PARALLEL.
func defaultParallel() int {
	var n int
	if _, err := fmt.Sscan(os.Getenv("TUNPLAN_PARALLEL"), &n); err == nil && n > 0 {
		return n
	}
	return 5
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
