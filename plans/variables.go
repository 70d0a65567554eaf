package plans

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

var variableSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "default"}, {Name: "description"},
}}

// variables evaluates the variable blocks, with the command-line values converted to the type of
// each default.
func (l *loader) variables(blocks hcl.Blocks, cliVars map[string]string) cty.Value {
	vals := map[string]cty.Value{}
	seen := map[string]hcl.Range{}
	for _, b := range blocks {
		name := b.Labels[0]
		if prev, dup := seen[name]; dup {
			l.errorf(b.LabelRanges[0], "Duplicate variable", "A variable named %q was previously declared at %s. Remove one of them.", name, prev)
			continue
		}
		seen[name] = b.DefRange
		if !hclsyntax.ValidIdentifier(name) {
			l.errorf(b.LabelRanges[0], "Invalid variable name", "%q is not a valid name: use letters, digits, underscores and dashes, starting with a letter.", name)
		}
		c, d := b.Body.Content(variableSchema)
		l.diags = append(l.diags, d...)
		def := cty.NilVal
		if a := c.Attributes["default"]; a != nil {
			v, d := a.Expr.Value(&hcl.EvalContext{Functions: functions()})
			l.diags = append(l.diags, d...)
			def = v
		}
		if a := c.Attributes["description"]; a != nil {
			l.str(a)
		}
		text, given := cliVars[name]
		switch {
		case given:
			vals[name] = l.cliValue(name, text, def, b.DefRange)
		case def == cty.NilVal:
			l.errorf(b.DefRange, "No value for required variable", "Variable %q has no default: give it on the command line with --var %s=VALUE, or add default = … to the block.", name, name)
			vals[name] = cty.DynamicVal
		default:
			vals[name] = def
		}
	}
	var extra []string
	for name := range cliVars {
		if _, ok := seen[name]; !ok {
			extra = append(extra, name)
		}
	}
	slices.Sort(extra)
	known := slices.Sorted(func(yield func(string) bool) {
		for n := range seen {
			if !yield(n) {
				return
			}
		}
	})
	for _, name := range extra {
		list := "The plan declares no variables"
		if len(known) > 0 {
			list = "The plan declares: " + strings.Join(known, ", ")
		}
		l.diags = append(l.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Undeclared variable",
			Detail:   fmt.Sprintf("--var %s was given, but the plan has no variable %q%s. %s; declare it with variable %q { default = … } or fix the name.", name, name, suggest(name, known), list, name),
		})
	}
	return cty.ObjectVal(vals)
}

// cliValue converts a --var value to the type of the variable's default: strings stay as given,
// numbers and booleans are converted, lists and maps are parsed as HCL expressions.
func (l *loader) cliValue(name, text string, def cty.Value, rng hcl.Range) cty.Value {
	if def == cty.NilVal || def.IsNull() || def.Type() == cty.String || def.Type() == cty.DynamicPseudoType {
		return cty.StringVal(text)
	}
	if def.Type().IsPrimitiveType() {
		v, err := convert.Convert(cty.StringVal(text), def.Type())
		if err != nil {
			l.errorf(rng, "Invalid value for variable", "--var %s=%s: %v (the default of %q is a %s).", name, text, err, name, def.Type().FriendlyName())
			return cty.DynamicVal
		}
		return v
	}
	expr, d := hclsyntax.ParseExpression([]byte(text), "--var "+name, hcl.Pos{Line: 1, Column: 1})
	if d.HasErrors() {
		l.errorf(rng, "Invalid value for variable", "--var %s=%s is not an HCL expression; the default of %q is a %s, so give e.g. [\"a\", \"b\"] or {k = \"v\"}.", name, text, name, def.Type().FriendlyName())
		return cty.DynamicVal
	}
	v, d := expr.Value(&hcl.EvalContext{Functions: functions()})
	if d.HasErrors() {
		l.errorf(rng, "Invalid value for variable", "--var %s=%s: %s", name, text, d.Error())
		return cty.DynamicVal
	}
	return v
}

// locals evaluates every locals block in dependency order (a local may use var.*, functions and
// other locals).
func (l *loader) locals(blocks hcl.Blocks) cty.Value {
	pending := map[string]*hcl.Attribute{}
	for _, b := range blocks {
		attrs, d := b.Body.JustAttributes()
		l.diags = append(l.diags, d...)
		for name, a := range attrs {
			if prev, dup := pending[name]; dup {
				l.errorf(a.NameRange, "Duplicate local value", "local.%s was previously defined at %s. Rename or remove one of them.", name, prev.NameRange)
				continue
			}
			pending[name] = a
		}
	}
	vals := map[string]cty.Value{}
	for len(pending) > 0 {
		progress := false
		for _, name := range slices.Sorted(mapKeys(pending)) {
			a := pending[name]
			ready := true
			for _, tr := range a.Expr.Variables() {
				if tr.RootName() != "local" || len(tr) < 2 {
					continue
				}
				if at, ok := tr[1].(hcl.TraverseAttr); ok {
					if _, waiting := pending[at.Name]; waiting && at.Name != name {
						ready = false
					}
					if at.Name == name {
						l.errorf(a.Expr.Range(), "Self-referencing local value", "local.%s refers to itself.", name)
						vals[name] = cty.DynamicVal
						delete(pending, name)
						ready = false
						progress = true
						break
					}
				}
			}
			if !ready {
				continue
			}
			ctx := l.ctx.NewChild()
			ctx.Variables = map[string]cty.Value{"local": cty.ObjectVal(vals)}
			v, d := a.Expr.Value(ctx)
			l.diags = append(l.diags, d...)
			if d.HasErrors() {
				v = cty.DynamicVal
			}
			vals[name] = v
			delete(pending, name)
			progress = true
		}
		if !progress {
			for _, name := range slices.Sorted(mapKeys(pending)) {
				l.errorf(pending[name].Expr.Range(), "Cycle in local values", "local.%s depends on itself through other locals (%s). Break the cycle.", name, strings.Join(slices.Sorted(mapKeys(pending)), ", "))
				vals[name] = cty.DynamicVal
			}
			break
		}
	}
	return cty.ObjectVal(vals)
}

// undeclaredVars replaces the diagnostic HCL gives for a reference to an undeclared variable
// (var.x: "Unsupported attribute", at the .x step) by tunplan's own, at the whole var.x. It runs
// once every expression was evaluated, so references in locals, dynamic blocks and attributes are
// all covered.
func (l *loader) undeclaredVars() {
	declared := slices.Sorted(mapKeys(l.ctx.Variables["var"].Type().AttributeTypes()))
	for i, d := range l.diags {
		if d.Severity != hcl.DiagError || d.Expression == nil || d.Subject == nil {
			continue
		}
		for _, tr := range d.Expression.Variables() {
			name, step, ok := varName(tr)
			if !ok || step != *d.Subject || slices.Contains(declared, name) {
				continue
			}
			l.diags[i] = undeclaredVar(name, tr.SourceRange(), declared)
			break
		}
	}
}

// varName is the variable a traversal var.NAME (or var["NAME"]) refers to, with the range of the
// step that names it.
func varName(tr hcl.Traversal) (string, hcl.Range, bool) {
	if tr.IsRelative() || tr.RootName() != "var" || len(tr) < 2 {
		return "", hcl.Range{}, false
	}
	switch s := tr[1].(type) {
	case hcl.TraverseAttr:
		return s.Name, s.SrcRange, true
	case hcl.TraverseIndex:
		if s.Key.IsKnown() && !s.Key.IsNull() && s.Key.Type() == cty.String {
			return s.Key.AsString(), s.SrcRange, true
		}
	}
	return "", hcl.Range{}, false
}

func undeclaredVar(name string, rng hcl.Range, declared []string) *hcl.Diagnostic {
	detail := fmt.Sprintf("no variable %q is declared", name)
	if best := closest(name, declared); best != "" {
		detail += fmt.Sprintf("; did you mean %q?", best)
	} else {
		detail += fmt.Sprintf("; declare it with variable %q { default = … } (--var %s=VALUE then overrides the default), or fix the name.", name, name)
		if len(declared) > 0 {
			detail += " The plan declares: " + strings.Join(declared, ", ") + "."
		}
	}
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Undeclared variable", Detail: detail, Subject: rng.Ptr()}
}
