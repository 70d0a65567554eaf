package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/tunplan/tunplan/internal/remotetext"
	"github.com/tunplan/tunplan/modules/protocol"
)

// exitUnhealthy is doctor's exit status when a host's state has a problem: diff's drift code, so
// that 0 stays "all is well" and 1 "could not tell".
const exitUnhealthy = 2

func newDoctor(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check that tunplan can read the state it keeps on each host, and say how to repair it (exit 0: ok, 2: a problem, 1: error)",
		Long: `doctor reads, on every selected host, each state file tunplan keeps in /var/lib/tunplan: every
generation (generations/*.json), the last run's outcome (last-run.json) and the claim. A file cut
short or damaged (a crash or a full disk while it was written) makes diff, apply, rollback and
destroy fail on that host, and the boot restore fall back to an older generation; doctor names each
such file, says what is wrong with it, and gives the command that repairs it. It changes nothing
and takes no lock, so it can run while another run holds a host.

Exit status: 0 when every host's state can be read, 2 when a file cannot, 1 on an error (an invalid
plan, a host that cannot be reached).`,
		Example: `  tunplan doctor
  tunplan doctor --hosts lvs01`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return doctorRun(g) },
	}
	g.addHostFlags(cmd)
	return cmd
}

func doctorRun(g *globalOptions) error {
	r, err := g.openRun()
	if err != nil {
		return err
	}
	defer r.Close()
	r.Doctor()
	sick := 0
	for _, h := range r.Hosts {
		if rep := h.DoctorReport(); rep != nil {
			renderDoctor(g.io.Out, h.Name(), *rep)
			if !rep.Healthy() {
				sick++
			}
		}
	}
	fmt.Fprintln(g.io.Out)
	failed := len(r.Failed())
	if failed > 0 {
		fmt.Fprintf(g.io.Out, "%s could not be checked.\n", plural(failed, "host"))
	}
	if sick > 0 {
		fmt.Fprintf(g.io.Out, "%s unreadable state: repair it as each fix says.\n", hasPhrase(sick))
	}
	if failed+sick == 0 {
		fmt.Fprintf(g.io.Out, "tunplan's state can be read on %s.\n", plural(len(r.Hosts), "host"))
	}
	if err := g.reportFailures(r); err != nil {
		return err
	}
	if sick > 0 {
		return exitCodeError{exitUnhealthy}
	}
	return nil
}

// renderDoctor writes one host's report:
//
//	lvs01: ok (4 state files read)
//	shanghai: 1 problem in 4 state files
//	  /var/lib/tunplan/generations/000002.json: the file is empty
//	    fix: move it aside, as root on the host: mv …
func renderDoctor(w io.Writer, host string, rep protocol.DoctorReport) {
	switch {
	case rep.Checked == 0:
		fmt.Fprintf(w, "%s: ok (no state: tunplan has not changed it)\n", host)
	case rep.Healthy():
		fmt.Fprintf(w, "%s: ok (%s read)\n", host, plural(rep.Checked, "state file"))
	default:
		fmt.Fprintf(w, "%s: %s in %s\n", host, plural(len(rep.Problems), "problem"), plural(rep.Checked, "state file"))
	}
	for _, p := range rep.Problems { // the host's text: escaped, as every remote string on the terminal
		fmt.Fprintf(w, "  %s: %s\n    fix: %s\n", remotetext.Escape(p.Path), remotetext.Escape(p.Issue), remotetext.Escape(p.Fix))
	}
}

// hasPhrase is "1 host has" or "3 hosts have".
func hasPhrase(n int) string {
	if n == 1 {
		return "1 host has"
	}
	return plural(n, "host") + " have"
}
