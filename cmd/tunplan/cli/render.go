package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sort"
	"time"

	"github.com/fatih/color"
	"github.com/hashicorp/hcl/v2"

	"github.com/tunplan/tunplan/internal/remotetext"
	"github.com/tunplan/tunplan/inventory/fleet"
	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/protocol"
)

// hostChanges is what one host reported, ready to show.
type hostChanges struct {
	Host     string            `json:"host"`
	Role     string            `json:"role"`
	Address  string            `json:"address"`
	Changes  []change.Change   `json:"changes"`
	Outcome  protocol.Outcome  `json:"outcome,omitempty"`
	Error    string            `json:"error,omitempty"`
	Warnings []string          `json:"warnings,omitempty"`
	LastRun  *protocol.LastRun `json:"last_run,omitempty"` // the latest apply/rollback, when its outcome may be news
	// Held are the destinations the director's watcher holds at weight 0: runtime state, no drift.
	Held []protocol.Held `json:"held,omitempty"`
	// Uploaded counts the helper bytes this run sent to the host: 0 when its helper was current.
	Uploaded int64 `json:"-"`
}

// tally counts changes by action.
type tally struct {
	Add     int `json:"add"`
	Change  int `json:"change"`
	Destroy int `json:"destroy"`
}

func (t *tally) count(cs []change.Change) {
	for _, c := range cs {
		switch c.Action {
		case change.Create:
			t.Add++
		case change.Update:
			t.Change++
		case change.Delete:
			t.Destroy++
		}
	}
}

func (t tally) total() int { return t.Add + t.Change + t.Destroy }

// collect is what each host reported in phase p, ready to show, with the tally of its changes.
func collect(hs []*fleet.HostRun, p fleet.Phase) ([]hostChanges, tally) {
	var out []hostChanges
	var t tally
	for _, h := range hs {
		res, _ := h.Result(p)
		hc := hostChanges{Host: h.Name(), Role: h.Roles.String(), Address: h.Target.Address, Changes: slices.Clone(res.Response.Changes),
			Outcome: res.Response.Outcome, LastRun: res.Response.LastRun, Held: res.Response.Held, Uploaded: h.Uploaded}
		if hc.Changes == nil {
			hc.Changes = []change.Change{}
		}
		sort.Slice(hc.Changes, func(i, j int) bool { return hc.Changes[i].Address < hc.Changes[j].Address })
		if err := h.Err(); err != nil {
			hc.Error = err.Error()
		}
		hc.Warnings = h.Warnings()
		t.count(hc.Changes)
		out = append(out, hc)
	}
	return out, t
}

// renderHuman writes one block per host, Terraform style:
//
//	# lvs01 (director, 198.19.0.11)
//	  + ipvs tcp/198.18.48.180:80   scheduler=rr persistence=0
//	  ~ sysctl net.ipv4.ip_forward  0 => 1
func renderHuman(io *IOStreams, w io.Writer, hosts []hostChanges) {
	bold := io.paint(color.Bold)
	red := io.paint(color.FgRed)
	sym := map[change.Action]func(string) string{
		change.Create: io.paint(color.FgGreen),
		change.Update: io.paint(color.FgYellow),
		change.Delete: red,
	}
	for _, h := range hosts {
		if r := h.LastRun; r != nil {
			fmt.Fprintf(w, "%s\n", io.paint(color.FgYellow)(remotetext.Escape(lastRunNote(h.Host, r))))
		}
		for _, warn := range h.Warnings {
			fmt.Fprintf(w, "%s\n", io.paint(color.FgYellow)("! "+h.Host+": warning: "+remotetext.Escape(warn)))
		}
		head := fmt.Sprintf("# %s (%s, %s)", h.Host, h.Role, h.Address)
		switch {
		case h.Error != "":
			fmt.Fprintf(w, "%s: %s\n", bold(head), red("failed (error below)"))
			continue
		case len(h.Changes) == 0:
			fmt.Fprintf(w, "%s: no changes\n", bold(head))
		default:
			fmt.Fprintln(w, bold(head))
			// The host wrote the changes: escaped, their text cannot drive the operator's terminal.
			width := 0
			for _, c := range h.Changes {
				width = max(width, len(remotetext.Escape(c.Address)))
			}
			for _, c := range h.Changes {
				fmt.Fprintf(w, "  %s %-*s  %s\n", sym[c.Action](string(rune(c.Action))), width, remotetext.Escape(c.Address), remotetext.Escape(c.Shown()))
			}
		}
		renderHeld(io, w, h.Held)
	}
	if line := uploadLine(hosts); line != "" {
		fmt.Fprintln(w, line)
	}
}

// uploadLine tells how much of the helper this run sent, when it sent any: the helper goes to a
// host once per helper version, so a line here means new hosts or a new tunplan release.
//
//	Uploaded the helper to 3 hosts: 9966054 bytes (10.0 MB).
func uploadLine(hosts []hostChanges) string {
	n, total := 0, int64(0)
	for _, h := range hosts {
		if h.Uploaded > 0 {
			n++
			total += h.Uploaded
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("Uploaded the helper to %s: %d bytes (%.1f MB).", plural(n, "host"), total, float64(total)/1e6)
}

// lastRunNote tells what a run whose answer never reached its CLI (or whose restore failed) did.
func lastRunNote(name string, r *protocol.LastRun) string {
	s := fmt.Sprintf("! %s: the last %s (run %s by %s, finished %s) ", name, r.Op, r.RunID, r.Actor, r.Time)
	if !r.Reported {
		s += "lost its connection before reporting; "
	}
	s += "outcome: " + string(r.Outcome)
	if r.Outcome == protocol.Applied {
		s += fmt.Sprintf(", generation %d", r.Generation)
	}
	if r.Error != "" {
		s += " (" + r.Error + ")"
	}
	return s
}

func (t tally) String() string {
	return fmt.Sprintf("%d to add, %d to change, %d to destroy", t.Add, t.Change, t.Destroy)
}

// tallyJSON is the summary of diff --json: the changes by kind, and the hosts that failed.
type tallyJSON struct {
	tally
	Errors int `json:"errors"`
}

// renderJSON writes the machine-readable report of diff --json. status is "error" when a host
// could not be read, else "drift" or "match".
func renderJSON(w io.Writer, hosts []hostChanges, t tally, failed int, diags hcl.Diagnostics) error {
	status := "match"
	switch {
	case failed > 0:
		status = "error"
	case t.total() > 0:
		status = "drift"
	}
	return writeJSON(w, struct {
		Status      string           `json:"status"`
		Hosts       []hostChanges    `json:"hosts"`
		Summary     tallyJSON        `json:"summary"`
		Drift       bool             `json:"drift"`
		Diagnostics []diagnosticJSON `json:"diagnostics"`
	}{status, hosts, tallyJSON{t, failed}, t.total() > 0, diagnosticsJSON(diags)})
}

// writeJSON writes v as indented JSON, without HTML escapes.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// matchPhrase is "1 host matches" / "3 hosts match".
func matchPhrase(n int) string {
	if n == 1 {
		return "1 host matches"
	}
	return plural(n, "host") + " match"
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// phaseJSON is one host's result of one phase in apply --json.
type phaseJSON struct {
	Phase      fleet.Phase      `json:"phase"`
	Outcome    protocol.Outcome `json:"outcome,omitempty"`
	Generation int              `json:"generation,omitempty"`
	Changes    []change.Change  `json:"changes"`
	Error      string           `json:"error,omitempty"`
}

// renderApplyJSON writes apply --json: every host with the changes its diff found and the result of
// each phase it took part in, and with --verify what verify found. status is "failed" when any host
// (or the verify) failed, "applied" when hosts were changed, else "no-changes".
func renderApplyJSON(w io.Writer, r *fleet.Run, diags hcl.Diagnostics, verify *verifyReport) error {
	type hostJSON struct {
		hostChanges
		Phases []phaseJSON `json:"phases"`
	}
	hosts, t := collect(r.Hosts, fleet.Diff)
	out := make([]hostJSON, len(hosts))
	status := "no-changes"
	for i, h := range r.Hosts {
		out[i] = hostJSON{hostChanges: hosts[i], Phases: []phaseJSON{}}
		for _, res := range h.Results {
			p := phaseJSON{Phase: res.Phase, Outcome: res.Response.Outcome, Generation: res.Response.Generation, Changes: res.Response.Changes}
			if p.Changes == nil {
				p.Changes = []change.Change{}
			}
			if res.Err != nil {
				p.Error = res.Err.Error()
			}
			out[i].Phases = append(out[i].Phases, p)
		}
		if _, changed := h.Applied(); changed {
			status = "applied"
		}
	}
	if len(r.Failed()) > 0 || (verify != nil && verify.Status != "ok") {
		status = "failed"
	}
	return writeJSON(w, struct {
		Status      string           `json:"status"`
		Hosts       []hostJSON       `json:"hosts"`
		Summary     tallyJSON        `json:"summary"`
		Verify      *verifyReport    `json:"verify,omitempty"` // apply --verify
		Diagnostics []diagnosticJSON `json:"diagnostics"`
	}{status, out, tallyJSON{t, len(r.Failed())}, verify, diagnosticsJSON(diags)})
}

// renderHeld writes the destinations health checks or drains hold back (at weight 0, or removed),
// apart from the changes: they are what is true now, not drift.
//
//	held back by health checks or drains (runtime state, not drift):
//	  tcp/198.18.48.180:80 -> 198.18.10.182:80  at weight 0 (plan weight 1), failing since 2026-12-03T13:02:11Z: connect: connection refused
//	  tcp/198.18.48.180:80 -> 198.18.1.183:80  at weight 0 (plan weight 1), drained by ops@laptop at 2026-12-03T13:05:00Z
func renderHeld(io *IOStreams, w io.Writer, held []protocol.Held) {
	if len(held) == 0 {
		return
	}
	fmt.Fprintln(w, io.paint(color.FgCyan)("  held back by health checks or drains (runtime state, not drift):"))
	for _, h := range held {
		since := h.Since.UTC().Format(time.RFC3339)
		where := fmt.Sprintf("at weight 0 (plan weight %d)", h.Weight)
		if h.Removed {
			where = fmt.Sprintf("removed from the service (plan weight %d)", h.Weight)
		}
		why := "failing since " + since + ": " + remotetext.Escape(h.Reason)
		if h.By == protocol.HeldByDrain {
			why = remotetext.Escape(h.Reason) + " at " + since
		}
		fmt.Fprintf(w, "    %s -> %s  %s, %s\n", h.Service, netip.AddrPortFrom(h.Address, h.Port), where, why)
	}
}
