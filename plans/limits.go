package plans

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// Limits on what tunplan reads as a plan, so that a wrong or hostile file gives a diagnostic instead
// of exhausting memory or the stack.
const (
	MaxPlanBytes  = 16 << 20 // a plan of 100k realservers is far smaller
	MaxNesting    = 128      // brackets, braces and parentheses open at once
	MaxRangeElems = 100_000  // elements one range() call may produce
)

// checkText refuses input that is not UTF-8 text, pointing at the first offending byte.
func checkText(filename string, src []byte) hcl.Diagnostics {
	bad := bytes.IndexByte(src, 0)
	if !utf8.Valid(src) {
		for i := 0; i < len(src); {
			r, n := utf8.DecodeRune(src[i:])
			if r == utf8.RuneError && n <= 1 {
				if bad < 0 || i < bad {
					bad = i
				}
				break
			}
			i += n
		}
	}
	if bad < 0 {
		return nil
	}
	return errorAt(filename, src, bad, "The plan is not a text file",
		fmt.Sprintf("Byte %d is a NUL or not UTF-8: a plan is UTF-8 text in HCL syntax. Is -f pointing at the right file?", bad))
}

// checkNesting refuses input nested deeper than MaxNesting, before the recursive parser sees it.
func checkNesting(filename string, src []byte) hcl.Diagnostics {
	depth := 0
	for i, c := range src {
		switch c {
		case '{', '[', '(':
			depth++
			if depth > MaxNesting {
				return errorAt(filename, src, i, "The plan is nested too deeply",
					fmt.Sprintf("More than %d brackets, braces or parentheses are open here; a plan needs a handful.", MaxNesting))
			}
		case '}', ']', ')':
			if depth > 0 {
				depth--
			}
		}
	}
	return nil
}

// errorAt is an error diagnostic pointing at byte offset of src.
func errorAt(filename string, src []byte, offset int, summary, detail string) hcl.Diagnostics {
	line := bytes.Count(src[:offset], []byte("\n")) + 1
	col := offset - bytes.LastIndexByte(src[:offset], '\n')
	pos := hcl.Pos{Line: line, Column: col, Byte: offset}
	return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: &hcl.Range{Filename: filename, Start: pos, End: pos}}}
}

// boundedRange is range() refusing to build more than MaxRangeElems elements.
var boundedRange = function.New(&function.Spec{
	VarParam: stdlib.RangeFunc.VarParam(),
	Type:     function.StaticReturnType(cty.List(cty.Number)),
	Impl: func(args []cty.Value, retType cty.Type) (cty.Value, error) {
		if len(args) >= 1 && len(args) <= 3 {
			nums := make([]float64, len(args))
			for i, a := range args {
				if a.IsKnown() && !a.IsNull() && a.Type() == cty.Number {
					nums[i], _ = a.AsBigFloat().Float64()
				}
			}
			start, end, step := 0.0, nums[0], 1.0
			if len(args) >= 2 {
				start, end = nums[0], nums[1]
			}
			if len(args) == 3 {
				step = nums[2]
			}
			if step != 0 && (end-start)/step > MaxRangeElems {
				return cty.NilVal, fmt.Errorf("range would make more than %d elements", MaxRangeElems)
			}
		}
		return stdlib.RangeFunc.Call(args)
	},
})
