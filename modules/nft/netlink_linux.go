package nft

import (
	"errors"
	"fmt"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// Netlink is the host's nftables over netlink. Each request opens its own socket (a non-lasting
// *nftables.Conn, which is what its zero value is), in the network namespace of the thread that
// makes it, so a failed transaction leaves no unread answer behind for the next.
type Netlink struct{}

// ReadTable lists the table (ENOENT: there is none), the chains of the inet family that are its,
// and the rules of each.
func (Netlink) ReadTable() (*Ruleset, error) {
	c := &nftables.Conn{}
	t, err := c.ListTableOfFamily(tableName, nftables.TableFamilyINet)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list table: %w", err)
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list chains: %w", err)
	}
	rs := &Ruleset{Flags: t.Flags}
	for _, ch := range chains {
		if ch.Table == nil || ch.Table.Name != tableName {
			continue
		}
		rs.Chains = append(rs.Chains, ch)
		rules, err := c.GetRules(t, ch)
		if err != nil {
			return nil, fmt.Errorf("list rules of chain %s: %w", ch.Name, err)
		}
		rs.Rules = append(rs.Rules, rules...)
	}
	return rs, nil
}

// WriteTable queues ops on a Conn of their own and sends them as one batch, which nf_tables
// commits whole or not at all.
func (Netlink) WriteTable(ops []Op) error {
	tx := &nftables.Conn{}
	t, ch := table(), chain()
	for _, op := range ops {
		switch op.Verb {
		case AddTable:
			tx.AddTable(t)
		case DelTable:
			tx.DelTable(t)
		case AddChain:
			tx.AddChain(ch)
		case AddRule:
			tx.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: op.Exprs})
		case ReplaceRule:
			if op.Handle == 0 {
				return errors.New("replace rule: no handle")
			}
			tx.ReplaceRule(&nftables.Rule{Table: t, Chain: ch, Handle: op.Handle, Exprs: op.Exprs})
		case DelRule:
			if err := tx.DelRule(&nftables.Rule{Table: t, Chain: ch, Handle: op.Handle}); err != nil {
				return fmt.Errorf("remove rule: %w", err)
			}
		default:
			return fmt.Errorf("unknown operation %d", op.Verb)
		}
	}
	return tx.Flush()
}
