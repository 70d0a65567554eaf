package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tunplan/tunplan/inventory/fleet"
)

type destroyOptions struct {
	*globalOptions
	autoApprove bool
	keepHistory bool
}

func newDestroy(g *globalOptions) *cobra.Command {
	o := &destroyOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "destroy",
		Short: "Remove everything tunplan put on the selected hosts",
		Long: `destroy shows, per host, what tunplan owns there and would remove, asks for confirmation, and
removes it: the IPVS services and destinations, the VIPs on the tunnel device (left down if it was
down or absent before tunplan), the sysctls (back to their values before tunplan), the boot restore
unit, /etc/modules-load.d/tunplan.conf and /etc/sysctl.d/99-tunplan.conf, and finally the helper and
/var/lib/tunplan. Directors go first, so no traffic reaches a realserver that already dropped the VIP.
Objects tunplan does not own (other IPVS services, other addresses) stay. Kernel modules stay loaded.

--keep-history keeps /var/lib/tunplan with its generations and records the destroy as one, so it
can be rolled back.`,
		Example: `  tunplan destroy -f tunplan.hcl
  tunplan destroy --hosts beijing --auto-approve
  tunplan destroy --keep-history`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return destroyRun(o) },
	}
	g.addHostFlags(cmd)
	cmd.Flags().BoolVar(&o.autoApprove, "auto-approve", false, "destroy without asking for confirmation")
	cmd.Flags().BoolVar(&o.keepHistory, "keep-history", false, "keep /var/lib/tunplan (its generations) and record the destroy as a generation")
	g.addLockTimeout(cmd)
	return cmd
}

func destroyRun(o *destroyOptions) error {
	r, err := o.openRun()
	if err != nil {
		return err
	}
	defer r.Close()
	if err := o.reportFailures(r); err != nil {
		return err
	}
	r.PreviewDestroy()
	hosts, t := collect(r.Hosts, fleet.DestroyPreview)
	renderHuman(o.io, o.io.Out, hosts)
	if err := o.reportFailures(r); err != nil {
		return err
	}
	what := "the helper and /var/lib/tunplan"
	if o.keepHistory {
		what = "the helper (keeping /var/lib/tunplan)"
	}
	fmt.Fprintf(o.io.Out, "\nDestroy: %s, then %s on %s.\n", t, what, plural(len(r.Hosts), "host"))
	if !o.autoApprove {
		ok, err := o.io.confirm("destroy", "Do you really want to remove everything tunplan put on these hosts?", "Destroy cancelled.")
		if err != nil || !ok {
			return err
		}
	}
	ok := r.Destroy(o.keepHistory)
	fmt.Fprintln(o.io.Out)
	var done []string
	for _, h := range r.Hosts {
		for _, p := range []fleet.Phase{fleet.DestroyDirectors, fleet.DestroyRealservers} {
			if res, ran := h.Result(p); ran && res.Err == nil {
				done = append(done, h.Name())
			}
		}
		if err := h.Err(); err != nil {
			o.io.errorf("%v (outcome: %s)", err, outcomeOf(h))
		}
	}
	if !ok {
		fmt.Fprintf(o.io.Out, "Destroy failed: %s cleaned (%s); failed hosts were restored to their snapshot unless stated otherwise.\n", plural(len(done), "host"), strings.Join(done, ", "))
		return errReported
	}
	fmt.Fprintf(o.io.Out, "Destroy complete! %s cleaned: %s.\n", plural(len(done), "host"), strings.Join(done, ", "))
	return nil
}
