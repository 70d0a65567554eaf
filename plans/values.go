package plans

import (
	"fmt"
	"math/big"
	"net/netip"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Value helpers: each evaluates an attribute, records problems, and reports whether the value is
// usable. Unknown values come from an error already reported (a broken local), so they are skipped
// silently.

func (l *loader) value(a *hcl.Attribute, want cty.Type) (cty.Value, bool) {
	v, d := a.Expr.Value(l.ctx)
	l.diags = append(l.diags, d...)
	if d.HasErrors() || !v.IsWhollyKnown() {
		return cty.NilVal, false
	}
	if v.IsNull() {
		l.errorf(a.Expr.Range(), "Null value", "%s must not be null: remove the attribute to use its default.", a.Name)
		return cty.NilVal, false
	}
	v, err := convert.Convert(v, want)
	if err != nil {
		l.errorf(a.Expr.Range(), "Incorrect attribute value type", "Inappropriate value for attribute %q: %s required.", a.Name, want.FriendlyName())
		return cty.NilVal, false
	}
	return v, true
}

func (l *loader) str(a *hcl.Attribute) (string, bool) {
	v, ok := l.value(a, cty.String)
	if !ok {
		return "", false
	}
	return v.AsString(), true
}

func (l *loader) boolean(a *hcl.Attribute) (bool, bool) {
	v, ok := l.value(a, cty.Bool)
	if !ok {
		return false, false
	}
	return v.True(), true
}

// intIn is a whole number in [lo, hi].
func (l *loader) intIn(a *hcl.Attribute, lo, hi int64, what, want string) (int64, bool) {
	v, ok := l.value(a, cty.Number)
	if !ok {
		return 0, false
	}
	f := v.AsBigFloat()
	n, acc := f.Int64()
	if !f.IsInt() || acc != big.Exact || n < lo || n > hi {
		l.errorf(a.Expr.Range(), fmt.Sprintf("Invalid %s", what), "%s is not valid here: %s must be %s.", f.Text('f', -1), a.Name, want)
		return 0, false
	}
	return n, true
}

// strList accepts a string or a list of strings, and returns the range of each element (the whole
// expression's range when the list is computed).
func (l *loader) strList(a *hcl.Attribute) ([]string, []hcl.Range, bool) {
	v, d := a.Expr.Value(l.ctx)
	l.diags = append(l.diags, d...)
	if d.HasErrors() || !v.IsWhollyKnown() {
		return nil, nil, false
	}
	if v.Type() == cty.String {
		return []string{v.AsString()}, []hcl.Range{a.Expr.Range()}, true
	}
	lv, err := convert.Convert(v, cty.List(cty.String))
	if err != nil || lv.IsNull() {
		l.errorf(a.Expr.Range(), "Incorrect attribute value type", "Inappropriate value for attribute %q: a string or a list of strings is required.", a.Name)
		return nil, nil, false
	}
	var out []string
	for _, e := range lv.AsValueSlice() {
		if e.IsNull() {
			l.errorf(a.Expr.Range(), "Null value", "%s must not contain null.", a.Name)
			return nil, nil, false
		}
		out = append(out, e.AsString())
	}
	ranges := make([]hcl.Range, len(out))
	elems, d := hcl.ExprList(a.Expr)
	for i := range ranges {
		if !d.HasErrors() && len(elems) == len(out) {
			ranges[i] = elems[i].Range()
		} else {
			ranges[i] = a.Expr.Range()
		}
	}
	return out, ranges, true
}

// ip parses s, the value of an attribute at rng, as an IPv4 or IPv6 address.
func (l *loader) ip(s string, rng hcl.Range, what string) (netip.Addr, bool) {
	addr, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		l.errorf(rng, "Invalid IP address", "%s %q is not an IP address: write an IPv4 address such as 198.18.0.10 or an IPv6 address such as 2001:2::10 (names are not resolved).", what, s)
		return netip.Addr{}, false
	case addr.Is4In6():
		l.errorf(rng, "Invalid IP address", "%s %s is an IPv4-mapped IPv6 address: write it as the IPv4 address %s.", what, s, addr.Unmap())
		return netip.Addr{}, false
	case addr.Zone() != "":
		l.errorf(rng, "Invalid IP address", "%s %q has a zone; write a plain address.", what, s)
		return netip.Addr{}, false
	}
	return addr, true
}
