package nft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"reflect"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/tunplan/tunplan/modules/protocol"
)

// The table tunplan owns and its one chain.
const (
	tableName = "tunplan"
	chainName = "prerouting"
)

// table is the table inet tunplan, as a request names it.
func table() *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyINet, Name: tableName}
}

// chain is the base chain of tunplan's rules: `type filter hook prerouting priority mangle; policy
// accept;`, where `iptables -t mangle -A PREROUTING … -j MARK` set LVS's marks: the packet has its
// mark before routing, and before IPVS looks up its firewall-mark service at local-in.
func chain() *nftables.Chain {
	accept := nftables.ChainPolicyAccept
	return &nftables.Chain{
		Name:     chainName,
		Table:    table(),
		Type:     nftables.ChainTypeFilter,
		Hooknum:  nftables.ChainHookRef(*nftables.ChainHookPrerouting),
		Priority: nftables.ChainPriorityRef(*nftables.ChainPriorityMangle),
		Policy:   &accept,
	}
}

// ours tells whether a chain of the table is tunplan's base chain as chain makes it: a chain of
// that name with another type, hook, priority or policy (or a regular chain) is not.
func ours(c *nftables.Chain) bool {
	want := chain()
	return c.Name == want.Name && c.Type == want.Type &&
		c.Hooknum != nil && *c.Hooknum == *want.Hooknum &&
		c.Priority != nil && *c.Priority == *want.Priority &&
		c.Policy != nil && *c.Policy == *want.Policy
}

// encode returns the expressions of m's rule, in the order and form nft builds them for `ip daddr
// 198.18.48.190 tcp dport 443 meta mark set 0x1` (`ip6 daddr` for an IPv6 address), so that `nft
// list table inet tunplan` shows that rule. `nft --debug=netlink` prints them as:
//
//	[ meta load nfproto => reg 1 ]
//	[ cmp eq reg 1 0x00000002 ]
//	[ payload load 4b @ network header + 16 => reg 1 ]
//	[ cmp eq reg 1 0xbe3012c6 ]
//	[ meta load l4proto => reg 1 ]
//	[ cmp eq reg 1 0x00000006 ]
//	[ payload load 2b @ transport header + 2 => reg 1 ]
//	[ cmp eq reg 1 0x0000bb01 ]
//	[ immediate reg 1 0x00000001 ]
//	[ meta set mark with reg 1 ]
//
// Addresses and ports are in network byte order; the mark, like every meta value, in the host's.
func encode(m protocol.Mark) ([]expr.Any, error) {
	var l4 byte
	switch m.Protocol {
	case "tcp":
		l4 = unix.IPPROTO_TCP
	case "udp":
		l4 = unix.IPPROTO_UDP
	default:
		return nil, fmt.Errorf("protocol %q: a mark rule matches tcp or udp", m.Protocol)
	}
	var nfproto byte
	var offset uint32 // of the destination address in the network header
	var daddr []byte
	switch a := m.Address; {
	case !a.IsValid() || a.Zone() != "":
		return nil, fmt.Errorf("address %q: a mark rule matches an IPv4 or IPv6 address without a zone", a)
	case a.Is4():
		b := a.As4()
		nfproto, offset, daddr = unix.NFPROTO_IPV4, 16, b[:]
	default:
		b := a.As16()
		nfproto, offset, daddr = unix.NFPROTO_IPV6, 24, b[:]
	}
	eq := func(data []byte) *expr.Cmp { return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data} }
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		eq([]byte{nfproto}),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: uint32(len(daddr))},
		eq(daddr),
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		eq([]byte{l4}),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}, // tcp and udp dport
		eq(binary.BigEndian.AppendUint16(nil, m.Port)),
		&expr.Immediate{Register: 1, Data: binary.NativeEndian.AppendUint32(nil, m.Mark)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
	}, nil
}

// errShape says a rule is not one encode makes.
var errShape = errors.New("not a mark rule")

// decode is the inverse of encode: the mark of a rule whose expressions are exactly those encode
// makes for it, or errShape for any other rule (another match, another statement, one expression
// more or less, other registers, a comment).
func decode(r *nftables.Rule) (protocol.Mark, error) {
	es := r.Exprs
	if len(es) != 10 || len(r.UserData) > 0 {
		return protocol.Mark{}, errShape
	}
	data := func(i int) []byte {
		if c, ok := es[i].(*expr.Cmp); ok {
			return c.Data
		}
		return nil
	}
	var m protocol.Mark
	switch proto, daddr := data(1), data(3); {
	case len(proto) == 1 && proto[0] == unix.NFPROTO_IPV4 && len(daddr) == 4:
		m.Address = netip.AddrFrom4([4]byte(daddr))
	case len(proto) == 1 && proto[0] == unix.NFPROTO_IPV6 && len(daddr) == 16:
		m.Address = netip.AddrFrom16([16]byte(daddr))
	default:
		return protocol.Mark{}, errShape
	}
	switch l4 := data(5); {
	case len(l4) == 1 && l4[0] == unix.IPPROTO_TCP:
		m.Protocol = "tcp"
	case len(l4) == 1 && l4[0] == unix.IPPROTO_UDP:
		m.Protocol = "udp"
	default:
		return protocol.Mark{}, errShape
	}
	port := data(7)
	imm, ok := es[8].(*expr.Immediate)
	if len(port) != 2 || !ok || len(imm.Data) != 4 {
		return protocol.Mark{}, errShape
	}
	m.Port, m.Mark = binary.BigEndian.Uint16(port), binary.NativeEndian.Uint32(imm.Data)
	// The values read, encoded again, must give the very expressions: every other field (the
	// registers, the comparison, the payload offsets and lengths, the keys) is checked here.
	if want, err := encode(m); err != nil || !reflect.DeepEqual(want, es) {
		return protocol.Mark{}, errShape
	}
	return m, nil
}
