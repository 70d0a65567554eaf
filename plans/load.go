package plans

import (
	"fmt"
	"os"
	"slices"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/dynblock"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"

	"github.com/tunplan/tunplan/modules/protocol"
)

// LoadFile reads, parses and validates the plan at path. vars are the --var values (name → text).
// The files map is what hcl.NewDiagnosticTextWriter needs to print diagnostics with source snippets.
// The plan is nil when the diagnostics have errors.
func LoadFile(path string, vars map[string]string) (*Plan, map[string]*hcl.File, hcl.Diagnostics) {
	if st, err := os.Stat(path); err == nil && st.Size() > MaxPlanBytes {
		return nil, map[string]*hcl.File{}, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "The plan is too large",
			Detail:   fmt.Sprintf("%s is %d bytes; tunplan reads plans of at most %d bytes. Is -f pointing at the right file?", path, st.Size(), MaxPlanBytes),
			Subject:  &hcl.Range{Filename: path, Start: hcl.InitialPos, End: hcl.InitialPos},
		}}
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, map[string]*hcl.File{}, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read the plan",
			Detail:   fmt.Sprintf("%v. Give the plan file with -f (default tunplan.hcl in the current directory).", err),
		}}
	}
	return Load(path, src, vars)
}

// Load parses and validates the plan src, named filename in diagnostics. See LoadFile.
func Load(filename string, src []byte, vars map[string]string) (*Plan, map[string]*hcl.File, hcl.Diagnostics) {
	if diags := append(checkText(filename, src), checkNesting(filename, src)...); diags.HasErrors() {
		return nil, map[string]*hcl.File{}, diags
	}
	parser := hclparse.NewParser()
	file, diags := parser.ParseHCL(src, filename)
	if diags.HasErrors() {
		return nil, parser.Files(), diags
	}
	l := &loader{diags: diags, filename: filename}
	p := l.load(file.Body, vars)
	if l.diags.HasErrors() {
		return nil, parser.Files(), l.diags
	}
	return p, parser.Files(), l.diags
}

var (
	preludeSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "locals"},
	}}
	mainSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
		{Type: "ssh"},
		{Type: "host", LabelNames: []string{"name"}},
		{Type: "virtual_service", LabelNames: []string{"name"}},
	}}
)

type loader struct {
	filename string
	diags    hcl.Diagnostics
	ctx      *hcl.EvalContext
}

func (l *loader) errorf(subject hcl.Range, summary, detail string, args ...any) {
	l.diags = append(l.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(detail, args...),
		Subject:  subject.Ptr(),
	})
}

func (l *loader) warnf(subject hcl.Range, summary, detail string, args ...any) {
	l.diags = append(l.diags, &hcl.Diagnostic{
		Severity: hcl.DiagWarning,
		Summary:  summary,
		Detail:   fmt.Sprintf(detail, args...),
		Subject:  subject.Ptr(),
	})
}

func (l *loader) load(body hcl.Body, cliVars map[string]string) *Plan {
	prelude, rest, d := body.PartialContent(preludeSchema)
	l.diags = append(l.diags, d...)
	l.ctx = &hcl.EvalContext{Functions: functions(), Variables: map[string]cty.Value{}}
	l.ctx.Variables["var"] = l.variables(prelude.Blocks.OfType("variable"), cliVars)
	l.ctx.Variables["local"] = l.locals(prelude.Blocks.OfType("locals"))

	content, d := dynblock.Expand(rest, l.ctx).Content(mainSchema)
	l.diags = append(l.diags, d...)

	defaults := sshSpec{}
	var sshBlock *hcl.Block
	for _, b := range content.Blocks.OfType("ssh") {
		if sshBlock != nil {
			l.errorf(b.DefRange, "Duplicate ssh block", "The SSH defaults were already given at %s. Merge the two ssh blocks into one.", sshBlock.DefRange)
			continue
		}
		sshBlock = b
		defaults = l.sshSpec(b, defaultSSHSchema)
	}

	p := &Plan{all: map[string]Host{}}
	for _, b := range content.Blocks.OfType("host") {
		h := l.host(b, defaults)
		if prev, dup := p.all[h.Name]; dup {
			l.errorf(b.LabelRanges[0], "Duplicate host", "A host named %q was previously declared at %s. Host names must be unique: rename or remove one of them.", h.Name, prev.DeclRange)
			continue
		}
		p.all[h.Name] = h
		p.Hosts = append(p.Hosts, h)
	}
	sort.Slice(p.Hosts, func(i, j int) bool { return p.Hosts[i].Name < p.Hosts[j].Name })

	for _, b := range content.Blocks.OfType("virtual_service") {
		p.Services = append(p.Services, l.service(b))
	}
	l.required(p)
	l.validate(p)
	l.knownHosts(p)
	l.undeclaredVars()
	return p
}

// required reports a plan without hosts or without virtual services (an empty file has neither),
// pointing at the start of the file.
func (l *loader) required(p *Plan) {
	start := hcl.Range{Filename: l.filename, Start: hcl.InitialPos, End: hcl.InitialPos}
	if len(p.all) == 0 {
		l.errorf(start, "No hosts", "The plan declares no host: tunplan needs at least one director and one realserver. Add a host block for each, e.g.\n\n"+
			"  host \"lvs01\" {\n    role    = \"director\"\n    address = \"198.18.48.181\"\n  }\n\n"+
			"  host \"rs01\" {\n    role    = \"realserver\"\n    address = \"198.18.1.11\"\n  }")
	}
	if len(p.Services) == 0 {
		director, realserver := "lvs01", "rs01"
		for _, h := range slices.Backward(p.declOrderHosts()) {
			if h.Has(protocol.Director) {
				director = h.Name
			}
			if h.Has(protocol.Realserver) {
				realserver = h.Name
			}
		}
		l.errorf(start, "No virtual services", "The plan declares no virtual_service, so there is nothing for the directors to balance. Add one, e.g.\n\n"+
			"  virtual_service \"web\" {\n    vip       = \"198.18.48.180\"\n    port      = 80\n    directors = [%q]\n    realserver %q {}\n  }", director, realserver)
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
