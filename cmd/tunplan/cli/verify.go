package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/fatih/color"
	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"

	"github.com/tunplan/tunplan/inventory/fleet"
	"github.com/tunplan/tunplan/modules/protocol"
	"github.com/tunplan/tunplan/plans"
)

type verifyOptions struct {
	*globalOptions
	timeout time.Duration
	explain bool
}

// ipipOverhead is what a packet gains on its way through the tunnel, and tcpipHeaders what a TCP
// segment of MSS bytes carries besides (IPv4 and TCP headers without options).
const (
	ipipOverhead = 20
	tcpipHeaders = 40
	defaultMTU   = 1500 // a path MTU the director could not read
)

func newVerify(g *globalOptions) *cobra.Command {
	o := &verifyOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Prove every realserver answers through the tunnel, and say why when one does not (exit 0: ok, 2: a failure, 1: error)",
		Long: `verify tests the path a client's request takes, not only the kernel objects. Each selected director
sends, for every TCP destination of every service it carries, a TCP SYN to VIP:port wrapped in IPIP
to the realserver, from its data address, exactly as IPVS forwards a client's SYN, and waits for the
realserver's SYN-ACK from VIP:port, which comes straight back (direct return); it answers that with
a RST, so nothing is left half-open. For every destination of a UDP service with a probe block in
the plan, it sends the probe's datagram (send, from a fresh port) the same way and waits for the
reply from VIP:port, which must start with the probe's expect bytes. Nothing goes through IPVS: no
connection, no counters.

Each destination is:
  ok           the realserver answered from VIP:port (with the round-trip time; TCP: the MSS it offers)
  refused      it answered with a RST (UDP: an ICMP port unreachable): nothing listens on VIP:port there
  no answer    nothing came back within --timeout
  wrong reply  UDP: a reply came, but not from the VIP, or not starting with the expected bytes
  not probed   a UDP destination whose service has no probe block (only its realserver is read), or a
               destination tunnelled by GUE or GRE (verify sends IPIP only)

For every destination that failed (every destination with --explain, and every UDP one not probed) the
realserver reads, without changing anything, what decides whether it answers through the tunnel:
ipip loaded, tunl0 up, the VIP on tunl0, the effective rp_filter of tunl0, a socket listening on
VIP:port (bound to the VIP, 0.0.0.0 or ::), a route back to the director, and its ARP settings. The
first of those that fails is printed as the cause. With --hosts, the selected directors probe and
only the selected realservers are asked why.

When the realserver's MSS plus 40 bytes of TCP/IP headers plus the 20 of IPIP is more than the path
MTU from the director, full-size client segments will not fit through the tunnel: verify warns, and
names the tunnel_mss (the path MTU less 60) to set on that realserver in the plan.

Checking the RIP directly, as keepalived's and ipvsadm-based health checks do, succeeds even when
the tunnel path is broken (nginx bound to the RIP, rp_filter strict, the VIP missing); verify does not.

Exit status: 0 when every probed destination is ok, 2 when any failed, 1 on an error (an invalid
plan, a host that cannot be reached or read).`,
		Example: `  tunplan verify -f tunplan.hcl
  tunplan verify --hosts 'role:director,beijing' --timeout 3s
  tunplan verify --explain
  tunplan verify --json | jq '.services[].destinations[] | select(.outcome != "ok")'`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if o.timeout <= 0 {
				return fmt.Errorf("--timeout %v: want a positive duration, such as 1s", o.timeout)
			}
			return verifyRun(o)
		},
	}
	g.addHostFlags(cmd)
	cmd.Flags().BoolVar(&g.json, "json", false, "write the report (or the plan's diagnostics) as JSON")
	cmd.Flags().DurationVar(&o.timeout, "timeout", time.Second, "how long a director waits for the realservers' answers")
	cmd.Flags().BoolVar(&o.explain, "explain", false, "have every realserver say what it reads of every path, not only of those that failed")
	return cmd
}

func verifyRun(o *verifyOptions) error {
	r, err := o.openRun()
	if err != nil {
		return err
	}
	defer r.Close()
	checks := r.Verify(fleet.VerifyOptions{Timeout: o.timeout, Explain: o.explain})
	v := tallyChecks(checks)
	failed := len(r.Failed())
	if o.json {
		if err := writeJSON(o.io.Out, verifyJSON(r, checks, o.diags)); err != nil {
			return err
		}
		if failed > 0 {
			return errReported
		}
	} else {
		renderVerify(o.io, o.io.Out, checks, o.explain)
		fmt.Fprintln(o.io.Out)
		switch {
		case failed > 0:
			fmt.Fprintf(o.io.Out, "%s could not be verified.\n", plural(failed, "host"))
		default:
			fmt.Fprintln(o.io.Out, v.sentence())
		}
		if err := o.reportFailures(r); err != nil {
			return err
		}
	}
	if v.failed > 0 {
		return exitCodeError{exitDrift}
	}
	return nil
}

// checkTally counts a verify's destinations.
type checkTally struct {
	probed, failed, notProbed int
	tunnels                   int // of notProbed: GUE or GRE destinations, which verify does not probe
}

func tallyChecks(cs []fleet.Check) checkTally {
	var t checkTally
	for _, c := range cs {
		switch {
		case c.Result.Outcome == protocol.ProbeNotProbed:
			t.notProbed++
			if c.Tunnel.Type != protocol.TunnelIPIP {
				t.tunnels++
			}
		case c.Failed():
			t.probed++
			t.failed++
		default:
			t.probed++
		}
	}
	return t
}

// sentence sums a verify up: "Verify complete: 2 destinations answer through the tunnel."
func (t checkTally) sentence() string {
	var s string
	switch {
	case t.failed > 0:
		s = fmt.Sprintf("Verify failed: %d of %s did not answer through the tunnel.", t.failed, plural(t.probed, "probed destination"))
	case t.probed == 0:
		s = "Nothing was probed: the selected directors carry no TCP destination, and no UDP one with a probe block."
	case t.probed == 1:
		s = "Verify complete: 1 destination answers through the tunnel."
	default:
		s = fmt.Sprintf("Verify complete: %d destinations answer through the tunnel.", t.probed)
	}
	switch {
	case t.tunnels == 0 && t.notProbed > 0:
		s += fmt.Sprintf(" %s not probed (UDP, no probe block).", plural(t.notProbed, "destination"))
	case t.tunnels == t.notProbed && t.notProbed > 0:
		s += fmt.Sprintf(" %s not probed (GUE or GRE: verify sends IPIP only).", plural(t.notProbed, "destination"))
	case t.tunnels > 0:
		s += fmt.Sprintf(" %s not probed (UDP without a probe block, or GUE or GRE: verify sends IPIP only).", plural(t.notProbed, "destination"))
	}
	return s
}

// destination names a check's realserver: "beijing (198.18.10.182)", or its address alone.
func destination(c fleet.Check) string {
	rip := c.Result.RIP.String()
	if c.Result.Port != c.Service.Port {
		rip += fmt.Sprintf(":%d", c.Result.Port)
	}
	if c.Realserver == "" {
		return rip
	}
	return c.Realserver + " (" + rip + ")"
}

func rtt(c fleet.Check) string {
	if c.Result.RTTMicros <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f ms", float64(c.Result.RTTMicros)/1000)
}

func mss(c fleet.Check) string {
	if c.Result.MSS == 0 {
		return "-"
	}
	return fmt.Sprint(c.Result.MSS)
}

// mtuWarning is set when a full-size segment from a client, wrapped in IPIP, is more than the path
// MTU from the director to the realserver.
func mtuWarning(c fleet.Check) string {
	if c.Result.Outcome != protocol.ProbeOK || c.Result.MSS == 0 {
		return ""
	}
	mtu := c.Result.PathMTU
	if mtu <= 0 {
		mtu = defaultMTU
	}
	size := int(c.Result.MSS) + tcpipHeaders + ipipOverhead
	if size <= mtu {
		return ""
	}
	fix, host := mtu-tcpipHeaders-ipipOverhead, c.Realserver
	if host == "" {
		host = "the realserver at " + c.Result.RIP.String()
	}
	advice := fmt.Sprintf("set tunnel_mss = %d on %s", fix, host)
	if fix < plans.MinTunnelMSS {
		advice = fmt.Sprintf("the realserver's MSS would need to be at most %d, less than tunnel_mss can set (%d)", fix, plans.MinTunnelMSS)
	}
	return fmt.Sprintf("MSS %d + 40 (TCP/IP) + 20 (IPIP) = %d bytes, more than the path MTU %d from %s: full-size client segments "+
		"will need fragmentation (or an ICMP \"fragmentation needed\", which many networks block); %s", c.Result.MSS, size, mtu, c.Director, advice)
}

// renderVerify writes one table per service and director:
//
//	# tcp/198.18.48.180:80 from lvs01
//	  DESTINATION              OUTCOME  RTT     MSS   CAUSE
//	  shanghai (198.18.1.183)  ok       0.8 ms  1460
//	  beijing (198.18.10.182)  refused  0.4 ms  -     nothing listens on 198.18.48.180:80 (nginx listens on 198.18.10.182:80 only)
func renderVerify(io *IOStreams, w io.Writer, checks []fleet.Check, explain bool) {
	bold := io.paint(color.Bold)
	paint := map[protocol.ProbeOutcome]func(string) string{
		protocol.ProbeOK: io.paint(color.FgGreen), protocol.ProbeRefused: io.paint(color.FgRed),
		protocol.ProbeNoAnswer: io.paint(color.FgRed), protocol.ProbeNotProbed: io.paint(color.Faint),
		protocol.ProbeWrongReply: io.paint(color.FgRed),
	}
	yellow := io.paint(color.FgYellow)
	for i := 0; i < len(checks); {
		j := i
		for j < len(checks) && checks[j].Director == checks[i].Director && checks[j].Service == checks[i].Service {
			j++
		}
		group := checks[i:j]
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w, bold(fmt.Sprintf("# %s from %s", group[0].Service, group[0].Director)))
		rows := [][]string{{"DESTINATION", "OUTCOME", "RTT", "MSS", "CAUSE"}}
		for _, c := range group {
			rows = append(rows, []string{destination(c), string(c.Result.Outcome), rtt(c), mss(c), c.Cause})
		}
		width := make([]int, 4)
		for _, r := range rows {
			for k := range width {
				width[k] = max(width[k], len(r[k]))
			}
		}
		for n, r := range rows {
			var b strings.Builder
			b.WriteString("  ")
			for k := range width {
				cell := r[k]
				if k == 1 && n > 0 && paint[group[n-1].Result.Outcome] != nil {
					cell = paint[group[n-1].Result.Outcome](cell)
				}
				b.WriteString(cell + strings.Repeat(" ", width[k]-len(r[k])+2))
			}
			b.WriteString(r[4])
			fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
		}
		for _, c := range group {
			if m := mtuWarning(c); m != "" {
				fmt.Fprintln(w, yellow("  ! "+destination(c)+": warning: "+m))
			}
		}
		if explain {
			for _, c := range group {
				if len(c.Facts) == 0 {
					continue
				}
				fmt.Fprintf(w, "  %s reads:\n", destination(c))
				fw := 0
				for _, f := range c.Facts {
					fw = max(fw, len(f.Name))
				}
				for _, f := range c.Facts {
					mark := io.paint(color.FgGreen)("ok  ")
					if !f.OK {
						mark = io.paint(color.FgRed)("FAIL")
					}
					fmt.Fprintf(w, "    %s  %-*s  %s\n", mark, fw, f.Name, f.Value)
				}
			}
		}
		i = j
	}
}

// checkJSON is one destination in verify --json.
type checkJSON struct {
	Realserver string          `json:"realserver,omitempty"`
	RIP        string          `json:"rip"`
	Port       uint16          `json:"port"`
	Outcome    string          `json:"outcome"`
	RTTMicros  int64           `json:"rtt_us,omitempty"`
	MSS        uint16          `json:"mss,omitempty"`
	PathMTU    int             `json:"path_mtu,omitempty"`
	Detail     string          `json:"detail,omitempty"`
	Cause      string          `json:"cause,omitempty"`
	MTUWarning string          `json:"mtu_warning,omitempty"`
	Facts      []protocol.Fact `json:"facts,omitempty"`
}

type serviceJSON struct {
	Service      string      `json:"service"`
	Director     string      `json:"director"`
	Destinations []checkJSON `json:"destinations"`
}

type hostErrorJSON struct {
	Host  string `json:"host"`
	Error string `json:"error"`
}

// verifyReport is the document of verify --json, and the "verify" of apply --verify --json.
type verifyReport struct {
	Status   string          `json:"status"` // ok, failed (a destination), error (a host)
	Services []serviceJSON   `json:"services"`
	Summary  verifySummary   `json:"summary"`
	Errors   []hostErrorJSON `json:"errors"`
	// RolledBack are the hosts apply --verify --atomic rolled back after a failed verify.
	RolledBack []string `json:"rolled_back,omitempty"`
}

type verifySummary struct {
	Probed    int `json:"probed"`
	Failed    int `json:"failed"`
	NotProbed int `json:"not_probed"`
	Errors    int `json:"errors"`
}

func verifyJSON(r *fleet.Run, checks []fleet.Check, diags hcl.Diagnostics) any {
	return struct {
		verifyReport
		Diagnostics []diagnosticJSON `json:"diagnostics"`
	}{verifyDoc(r, checks), diagnosticsJSON(diags)}
}

func verifyDoc(r *fleet.Run, checks []fleet.Check) verifyReport {
	t := tallyChecks(checks)
	rep := verifyReport{Status: "ok", Services: []serviceJSON{}, Errors: []hostErrorJSON{},
		Summary: verifySummary{Probed: t.probed, Failed: t.failed, NotProbed: t.notProbed}}
	for _, c := range checks {
		if n := len(rep.Services); n == 0 || rep.Services[n-1].Director != c.Director || rep.Services[n-1].Service != c.Service.String() {
			rep.Services = append(rep.Services, serviceJSON{Service: c.Service.String(), Director: c.Director})
		}
		s := &rep.Services[len(rep.Services)-1]
		s.Destinations = append(s.Destinations, checkJSON{Realserver: c.Realserver, RIP: c.Result.RIP.String(), Port: c.Result.Port,
			Outcome: string(c.Result.Outcome), RTTMicros: c.Result.RTTMicros, MSS: c.Result.MSS, PathMTU: c.Result.PathMTU,
			Detail: c.Result.Detail, Cause: c.Cause, MTUWarning: mtuWarning(c), Facts: c.Facts})
	}
	for _, h := range r.Hosts {
		for _, p := range []fleet.Phase{fleet.Connect, fleet.Probe, fleet.Explain} {
			if res, ok := h.Result(p); ok && res.Err != nil {
				rep.Errors = append(rep.Errors, hostErrorJSON{h.Name(), res.Err.Error()})
			}
		}
	}
	rep.Summary.Errors = len(rep.Errors)
	switch {
	case len(rep.Errors) > 0:
		rep.Status = "error"
	case t.failed > 0:
		rep.Status = "failed"
	}
	return rep
}

// applyVerification is what apply --verify found after converging, and what it undid.
type applyVerification struct {
	checks   []fleet.Check
	failed   bool // a destination failed, or a host could not be verified
	undone   []string
	undoFail bool
}

// report is the "verify" of apply --json.
func (v *applyVerification) report(r *fleet.Run) *verifyReport {
	if v == nil {
		return nil
	}
	rep := verifyDoc(r, v.checks)
	rep.RolledBack = v.undone
	return &rep
}

// verifyApplied verifies the hosts apply converged; with --atomic, a failure rolls back every host
// this run changed.
func (o *applyOptions) verifyApplied(r *fleet.Run) *applyVerification {
	v := &applyVerification{checks: r.Verify(fleet.VerifyOptions{Timeout: time.Second})}
	v.failed = tallyChecks(v.checks).failed > 0 || len(r.Failed()) > 0
	if v.failed && o.atomic {
		v.undoFail = !r.Undo()
		for _, h := range r.Hosts {
			if res, ok := h.Result(fleet.Undo); ok && res.Err == nil {
				v.undone = append(v.undone, h.Name())
			}
		}
	}
	return v
}

// reportVerify writes apply --verify's tables, errors and outcome.
func (o *applyOptions) reportVerify(r *fleet.Run, v *applyVerification) {
	fmt.Fprintln(o.io.Out, "\nVerifying the path through the tunnel to every destination:")
	fmt.Fprintln(o.io.Out)
	renderVerify(o.io, o.io.Out, v.checks, false)
	for _, h := range r.Hosts {
		for _, p := range []fleet.Phase{fleet.Probe, fleet.Explain} { // a failed undo is in the apply report
			if res, ok := h.Result(p); ok && res.Err != nil {
				o.io.errorf("%v", res.Err)
			}
		}
	}
	fmt.Fprintln(o.io.Out)
	switch {
	case !v.failed:
		fmt.Fprintln(o.io.Out, tallyChecks(v.checks).sentence())
	case !o.atomic:
		fmt.Fprintln(o.io.Out, "Verify failed: the hosts keep this run's changes (tunplan rollback undoes them).")
	case v.undoFail:
		fmt.Fprintf(o.io.Out, "Verify failed (--atomic): rolling back this run's changes failed on some hosts (see above); rolled back: %s.\n", orNone(v.undone))
	case len(v.undone) == 0:
		fmt.Fprintln(o.io.Out, "Verify failed (--atomic): this run changed no host, so there is nothing to roll back.")
	default:
		fmt.Fprintf(o.io.Out, "Verify failed (--atomic): rolled back %s changed in this run: %s.\n", plural(len(v.undone), "host"), strings.Join(v.undone, ", "))
	}
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
