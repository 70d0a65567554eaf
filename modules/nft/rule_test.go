package nft

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/tunplan/tunplan/modules/protocol"
)

func mark(proto, addr string, port uint16, m uint32) protocol.Mark {
	return protocol.Mark{Protocol: proto, Address: netip.MustParseAddr(addr), Port: port, Mark: m}
}

// debug renders expressions as libnftnl does for `nft --debug=netlink`: each register value as
// 32-bit words in host byte order.
func debug(es []expr.Any) string {
	words := func(b []byte) string {
		b = append(slices.Clone(b), make([]byte, (4-len(b)%4)%4)...)
		var w []string
		for i := 0; i < len(b); i += 4 {
			w = append(w, fmt.Sprintf("0x%08x", binary.NativeEndian.Uint32(b[i:])))
		}
		return strings.Join(w, " ")
	}
	keys := map[expr.MetaKey]string{expr.MetaKeyNFPROTO: "nfproto", expr.MetaKeyL4PROTO: "l4proto", expr.MetaKeyMARK: "mark"}
	bases := map[expr.PayloadBase]string{expr.PayloadBaseNetworkHeader: "network", expr.PayloadBaseTransportHeader: "transport"}
	var out []string
	for _, e := range es {
		switch e := e.(type) {
		case *expr.Meta:
			if e.SourceRegister {
				out = append(out, fmt.Sprintf("[ meta set %s with reg %d ]", keys[e.Key], e.Register))
			} else {
				out = append(out, fmt.Sprintf("[ meta load %s => reg %d ]", keys[e.Key], e.Register))
			}
		case *expr.Cmp:
			out = append(out, fmt.Sprintf("[ cmp eq reg %d %s ]", e.Register, words(e.Data)))
		case *expr.Payload:
			out = append(out, fmt.Sprintf("[ payload load %db @ %s header + %d => reg %d ]", e.Len, bases[e.Base], e.Offset, e.DestRegister))
		case *expr.Immediate:
			out = append(out, fmt.Sprintf("[ immediate reg %d %s ]", e.Register, words(e.Data)))
		default:
			out = append(out, fmt.Sprintf("[ %T ]", e))
		}
	}
	return strings.Join(out, "\n")
}

// The expressions are nft's own for the rule: the expected texts are what nft 1.0.6 (Debian 12)
// printed with --debug=netlink for `add rule inet tunplan prerouting ip daddr 198.18.48.190 tcp
// dport 443 meta mark set 0x1` and `… ip6 daddr 2001:2::190 udp dport 53 meta mark set 0x2`, on
// little-endian amd64.
func TestEncodeAsNft(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the texts nft printed are those of a little-endian host")
	}
	for _, c := range []struct {
		m    protocol.Mark
		want string
	}{
		{mark("tcp", "198.18.48.190", 443, 1), `[ meta load nfproto => reg 1 ]
[ cmp eq reg 1 0x00000002 ]
[ payload load 4b @ network header + 16 => reg 1 ]
[ cmp eq reg 1 0xbe3012c6 ]
[ meta load l4proto => reg 1 ]
[ cmp eq reg 1 0x00000006 ]
[ payload load 2b @ transport header + 2 => reg 1 ]
[ cmp eq reg 1 0x0000bb01 ]
[ immediate reg 1 0x00000001 ]
[ meta set mark with reg 1 ]`},
		{mark("udp", "2001:2::190", 53, 2), `[ meta load nfproto => reg 1 ]
[ cmp eq reg 1 0x0000000a ]
[ payload load 16b @ network header + 24 => reg 1 ]
[ cmp eq reg 1 0x02000120 0x00000000 0x00000000 0x90010000 ]
[ meta load l4proto => reg 1 ]
[ cmp eq reg 1 0x00000011 ]
[ payload load 2b @ transport header + 2 => reg 1 ]
[ cmp eq reg 1 0x00003500 ]
[ immediate reg 1 0x00000002 ]
[ meta set mark with reg 1 ]`},
	} {
		es, err := encode(c.m)
		if err != nil {
			t.Fatal(err)
		}
		if got := debug(es); got != c.want {
			t.Errorf("%s:\n%s\nwant\n%s", c.m.Match(), got, c.want)
		}
		// The attributes the kernel gets: the address and port in network byte order.
		attrs, err := expr.Marshal(byte(nftables.TableFamilyINet), es[3])
		if err != nil {
			t.Fatal(err)
		}
		if a := c.m.Address.AsSlice(); !strings.Contains(string(attrs), string(a)) {
			t.Errorf("%s: the address comparison %x lacks %x", c.m.Match(), attrs, a)
		}
	}
}

// decode reads back every rule encode makes.
func TestRoundTrip(t *testing.T) {
	for _, m := range []protocol.Mark{
		mark("tcp", "198.18.48.190", 443, 1),
		mark("udp", "198.18.48.190", 53, 2),
		mark("tcp", "2001:2::190", 443, 3),
		mark("udp", "2001:2::190", 53, 4),
		mark("tcp", "0.0.0.1", 0, 0),
		mark("udp", "::ffff:198.18.48.190", 65535, 0xffffffff),
	} {
		es, err := encode(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decode(&nftables.Rule{Exprs: es})
		if err != nil || got != m {
			t.Errorf("%v: decoded %v, %v", m, got, err)
		}
	}
}

// Only tcp and udp, and addresses without a zone, make a rule.
func TestEncodeRefuses(t *testing.T) {
	for _, m := range []protocol.Mark{
		mark("sctp", "198.18.48.190", 443, 1),
		{Protocol: "tcp", Port: 443, Mark: 1},
		mark("tcp", "fe80::1%eth0", 443, 1),
	} {
		if _, err := encode(m); err == nil {
			t.Errorf("%v encoded", m)
		}
	}
}

// A rule that is not exactly one encode makes is not tunplan's: another match, another statement,
// one expression more or less, another register or operator, a comment.
func TestDecodeForeign(t *testing.T) {
	base := func() []expr.Any {
		es, err := encode(mark("tcp", "198.18.48.190", 443, 1))
		if err != nil {
			t.Fatal(err)
		}
		return es
	}
	cases := map[string]func(es []expr.Any) *nftables.Rule{
		"counter added": func(es []expr.Any) *nftables.Rule {
			return &nftables.Rule{Exprs: append(es, &expr.Counter{})}
		},
		"statement dropped": func(es []expr.Any) *nftables.Rule { return &nftables.Rule{Exprs: es[:9]} },
		"a comment": func(es []expr.Any) *nftables.Rule {
			return &nftables.Rule{Exprs: es, UserData: []byte{0, 2, 'x', 0}}
		},
		"ip saddr": func(es []expr.Any) *nftables.Rule {
			es[2].(*expr.Payload).Offset = 12
			return &nftables.Rule{Exprs: es}
		},
		"tcp sport": func(es []expr.Any) *nftables.Rule {
			es[6].(*expr.Payload).Offset = 0
			return &nftables.Rule{Exprs: es}
		},
		"daddr !=": func(es []expr.Any) *nftables.Rule {
			es[3].(*expr.Cmp).Op = expr.CmpOpNeq
			return &nftables.Rule{Exprs: es}
		},
		"register 2": func(es []expr.Any) *nftables.Rule {
			es[8].(*expr.Immediate).Register = 2
			return &nftables.Rule{Exprs: es}
		},
		"meta priority set": func(es []expr.Any) *nftables.Rule {
			es[9].(*expr.Meta).Key = expr.MetaKeyPRIORITY
			return &nftables.Rule{Exprs: es}
		},
		"sctp": func(es []expr.Any) *nftables.Rule {
			es[5].(*expr.Cmp).Data = []byte{unix.IPPROTO_SCTP}
			return &nftables.Rule{Exprs: es}
		},
		"ip with an IPv6 address": func(es []expr.Any) *nftables.Rule {
			es[3].(*expr.Cmp).Data = make([]byte, 16)
			return &nftables.Rule{Exprs: es}
		},
		"a verdict instead of the mark": func(es []expr.Any) *nftables.Rule {
			es[9] = &expr.Verdict{Kind: expr.VerdictDrop}
			return &nftables.Rule{Exprs: es}
		},
		"checksum on the payload": func(es []expr.Any) *nftables.Rule {
			es[2].(*expr.Payload).CsumType = expr.CsumTypeInet
			return &nftables.Rule{Exprs: es}
		},
	}
	for name, mk := range cases {
		if m, err := decode(mk(base())); err != errShape {
			t.Errorf("%s: decoded as %v (%v)", name, m, err)
		}
	}
}
