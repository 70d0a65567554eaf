package plans

import (
	"fmt"
	"math/big"
	"net/netip"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// functions is the table of functions a plan may call, named as Terraform names them.
func functions() map[string]function.Function {
	return map[string]function.Function{
		// numbers
		"abs": stdlib.AbsoluteFunc, "ceil": stdlib.CeilFunc, "floor": stdlib.FloorFunc,
		"max": stdlib.MaxFunc, "min": stdlib.MinFunc, "parseint": stdlib.ParseIntFunc,
		"pow": stdlib.PowFunc, "signum": stdlib.SignumFunc,
		// strings
		"chomp": stdlib.ChompFunc, "format": stdlib.FormatFunc, "formatlist": stdlib.FormatListFunc,
		"indent": stdlib.IndentFunc, "join": stdlib.JoinFunc, "lower": stdlib.LowerFunc,
		"upper": stdlib.UpperFunc, "replace": stdlib.ReplaceFunc, "regex": stdlib.RegexFunc,
		"regexall": stdlib.RegexAllFunc, "split": stdlib.SplitFunc, "substr": stdlib.SubstrFunc,
		"title": stdlib.TitleFunc, "trim": stdlib.TrimFunc, "trimprefix": stdlib.TrimPrefixFunc,
		"trimsuffix": stdlib.TrimSuffixFunc, "trimspace": stdlib.TrimSpaceFunc, "strlen": stdlib.StrlenFunc,
		// collections
		"chunklist": stdlib.ChunklistFunc, "coalesce": stdlib.CoalesceFunc,
		"coalescelist": stdlib.CoalesceListFunc, "compact": stdlib.CompactFunc,
		"concat": stdlib.ConcatFunc, "contains": stdlib.ContainsFunc, "distinct": stdlib.DistinctFunc,
		"element": stdlib.ElementFunc, "flatten": stdlib.FlattenFunc, "index": stdlib.IndexFunc,
		"keys": stdlib.KeysFunc, "length": stdlib.LengthFunc, "lookup": stdlib.LookupFunc,
		"merge": stdlib.MergeFunc, "range": boundedRange, "reverse": stdlib.ReverseListFunc,
		"setproduct": stdlib.SetProductFunc, "setunion": stdlib.SetUnionFunc,
		"setintersection": stdlib.SetIntersectionFunc, "setsubtract": stdlib.SetSubtractFunc,
		"slice": stdlib.SliceFunc, "sort": stdlib.SortFunc, "values": stdlib.ValuesFunc,
		"zipmap": stdlib.ZipmapFunc,
		// encoding and conversion
		"jsonencode": stdlib.JSONEncodeFunc, "jsondecode": stdlib.JSONDecodeFunc,
		"tostring": stdlib.MakeToFunc(cty.String), "tonumber": stdlib.MakeToFunc(cty.Number),
		"tobool": stdlib.MakeToFunc(cty.Bool), "tolist": stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
		"toset": stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)), "tomap": stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)),
		// IPv4 addressing
		"cidrhost":   cidrHostFunc,
		"cidrsubnet": cidrSubnetFunc,
	}
}

// cidrHostFunc is cidrhost(prefix, hostnum): the address number hostnum in the IPv4 prefix; a
// negative hostnum counts from the end (-1 is the last address).
var cidrHostFunc = function.New(&function.Spec{
	Params: []function.Parameter{
		{Name: "prefix", Type: cty.String},
		{Name: "hostnum", Type: cty.Number},
	},
	Type: function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		p, err := parseIPv4Prefix(args[0].AsString())
		if err != nil {
			return cty.UnknownVal(cty.String), function.NewArgError(0, err)
		}
		n, err := wholeNumber(args[1].AsBigFloat())
		if err != nil {
			return cty.UnknownVal(cty.String), function.NewArgError(1, err)
		}
		size := int64(1) << (32 - p.Bits())
		if n < 0 {
			n += size
		}
		if n < 0 || n >= size {
			return cty.UnknownVal(cty.String), function.NewArgError(1, fmt.Errorf("prefix %s has no host number %s (it has %d addresses)", p, args[1].AsBigFloat().Text('f', -1), size))
		}
		return cty.StringVal(addUint32(p.Addr(), uint32(n)).String()), nil
	},
})

// cidrSubnetFunc is cidrsubnet(prefix, newbits, netnum): the netnum-th subnet of the IPv4 prefix
// extended by newbits bits.
var cidrSubnetFunc = function.New(&function.Spec{
	Params: []function.Parameter{
		{Name: "prefix", Type: cty.String},
		{Name: "newbits", Type: cty.Number},
		{Name: "netnum", Type: cty.Number},
	},
	Type: function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		p, err := parseIPv4Prefix(args[0].AsString())
		if err != nil {
			return cty.UnknownVal(cty.String), function.NewArgError(0, err)
		}
		nb, err := wholeNumber(args[1].AsBigFloat())
		if err != nil || nb < 0 || int(nb)+p.Bits() > 32 {
			return cty.UnknownVal(cty.String), function.NewArgError(1, fmt.Errorf("newbits must be a whole number from 0 to %d for %s", 32-p.Bits(), p))
		}
		nn, err := wholeNumber(args[2].AsBigFloat())
		if err != nil || nn < 0 || nn >= int64(1)<<nb {
			return cty.UnknownVal(cty.String), function.NewArgError(2, fmt.Errorf("netnum must be a whole number from 0 to %d", (int64(1)<<nb)-1))
		}
		bits := p.Bits() + int(nb)
		a := addUint32(p.Addr(), uint32(nn)<<(32-bits))
		return cty.StringVal(netip.PrefixFrom(a, bits).String()), nil
	},
})

func parseIPv4Prefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, fmt.Errorf("invalid prefix %q: want an IPv4 prefix like 198.18.0.0/16", s)
	}
	if !p.Addr().Is4() {
		return p, fmt.Errorf("%s is not an IPv4 prefix: only IPv4 is supported yet", s)
	}
	return p.Masked(), nil
}

func wholeNumber(f *big.Float) (int64, error) {
	if !f.IsInt() {
		return 0, fmt.Errorf("%s is not a whole number", f.Text('f', -1))
	}
	n, acc := f.Int64()
	if acc != big.Exact {
		return 0, fmt.Errorf("%s is out of range", f.Text('f', -1))
	}
	return n, nil
}

func addUint32(a netip.Addr, n uint32) netip.Addr {
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += n
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
