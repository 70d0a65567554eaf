package cli

import (
	"net/netip"
	"slices"

	"github.com/hashicorp/hcl/v2"

	"github.com/tunplan/tunplan/internal/remotetext"
	"github.com/tunplan/tunplan/inventory/fleet"
	"github.com/tunplan/tunplan/modules/protocol"
	"github.com/tunplan/tunplan/plans"
)

// loadPlan parses and validates the plan and fails when it has errors. Its diagnostics are written
// at once as text, or with --json kept for the command's JSON document (on errors, a document of
// them alone is written here).
func (g *globalOptions) loadPlan() (*plans.Plan, error) {
	vars, err := g.varMap()
	if err != nil {
		return nil, err
	}
	p, files, diags := plans.LoadFile(g.file, vars)
	if !diags.HasErrors() {
		var ldiags hcl.Diagnostics
		p, ldiags = p.Limit(g.hosts)
		diags = append(diags, ldiags...)
	}
	g.diags, g.plan = diags, p
	switch {
	case g.json && diags.HasErrors():
		_ = writeJSON(g.io.Out, struct {
			Status      string           `json:"status"`
			Diagnostics []diagnosticJSON `json:"diagnostics"`
		}{"error", diagnosticsJSON(diags)})
	case !g.json:
		writeDiagnostics(g.io, g.io.ErrOut, files, diags)
	}
	if diags.HasErrors() {
		return nil, errReported
	}
	return p, nil
}

// openRun loads the plan, selects its hosts (--hosts) and connects to them. Hosts that cannot be
// reached keep their error in the run; the caller reports them.
func (g *globalOptions) openRun() (*fleet.Run, error) {
	hosts, err := g.selectHosts()
	if err != nil {
		return nil, err
	}
	return g.open(hosts)
}

// openDirectors is openRun for the selected directors alone: status, drain and undrain ask nothing
// of realservers.
func (g *globalOptions) openDirectors() (*fleet.Run, error) {
	hosts, err := g.selectHosts()
	if err != nil {
		return nil, err
	}
	return g.open(slices.DeleteFunc(hosts, func(h fleet.Host) bool { return !h.Roles.Has(protocol.Director) }))
}

func (g *globalOptions) open(hosts []fleet.Host) (*fleet.Run, error) {
	if g.ready != nil {
		if err := g.ready(); err != nil {
			return nil, err
		}
	}
	return fleet.Open(hosts, g.connect, fleet.Options{Parallel: g.parallel, LockWait: g.lockWait}), nil
}

// selectHosts loads the plan and returns the hosts it selects (--hosts) with their desired state.
func (g *globalOptions) selectHosts() ([]fleet.Host, error) {
	p, err := g.loadPlan()
	if err != nil {
		return nil, err
	}
	desired, probes := p.Desired(), p.Probes()
	hosts := make([]fleet.Host, 0, len(p.Hosts))
	for _, h := range p.Hosts {
		fh := fleet.Host{Target: h.Target(), Roles: h.Roles, Desired: desired[h.Name], Address: h.AddressOf(netip.IPv4Unspecified())}
		if h.Has(protocol.Director) {
			fh.UDPProbes = probes
		}
		hosts = append(hosts, fh)
	}
	return hosts, nil
}

// reportFailures writes one line per failed host and fails when there is any. A host's error may
// hold the host's own text (the helper's error): escaped, it stays one line and cannot drive the
// terminal.
func (g *globalOptions) reportFailures(r *fleet.Run) error {
	failed := r.Failed()
	for _, h := range failed {
		g.io.errorf("%s", remotetext.Escape(h.Err().Error()))
	}
	if len(failed) > 0 {
		return errReported
	}
	return nil
}
