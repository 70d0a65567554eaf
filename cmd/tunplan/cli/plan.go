package cli

import (
	"github.com/hashicorp/hcl/v2"

	"github.com/tunplan/tunplan/plans"
)

// loadPlan parses and validates the plan, writes any diagnostics with their source snippets, and
// fails when there are errors.
func (g *globalOptions) loadPlan() (*plans.Plan, error) {
	vars, err := g.varMap()
	if err != nil {
		return nil, err
	}
	p, files, diags := plans.LoadFile(g.file, vars)
	if len(diags) > 0 {
		wr := hcl.NewDiagnosticTextWriter(g.io.ErrOut, files, 100, g.io.Color)
		_ = wr.WriteDiagnostics(diags)
	}
	if diags.HasErrors() {
		return nil, errReported
	}
	return p, nil
}

// loadFleet loads the plan and makes one member per host it selects (--hosts), sorted by name.
func (g *globalOptions) loadFleet() (*fleet, error) {
	p, err := g.loadPlan()
	if err != nil {
		return nil, err
	}
	p, diags := p.Limit(g.hosts)
	if diags.HasErrors() {
		_ = hcl.NewDiagnosticTextWriter(g.io.ErrOut, nil, 100, g.io.Color).WriteDiagnostics(diags)
		return nil, errReported
	}
	desired := p.Desired()
	f := &fleet{parallel: g.parallel}
	for _, h := range p.Hosts {
		f.members = append(f.members, &member{target: h.Target(), desired: desired[h.Name]})
	}
	sortMembers(f.members)
	return f, nil
}

// connect reaches every host of the fleet and reports the ones it could not reach.
func (g *globalOptions) connectAll(f *fleet) error {
	f.connect(g.connect)
	return g.reportFailures(f)
}

// reportFailures writes one line per failed host and fails when there is any.
func (g *globalOptions) reportFailures(f *fleet) error {
	failed := f.failed()
	for _, m := range failed {
		g.io.errorf("%v", m.err)
	}
	if len(failed) > 0 {
		return errReported
	}
	return nil
}
