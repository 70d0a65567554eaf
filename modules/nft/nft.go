// Package nft owns a director's firewall-mark rules (protocol.Mark): the rules that give the
// packets of an IPVS firewall-mark service their mark, written through nftables netlink
// (github.com/google/nftables). tunplan owns one whole table, inet tunplan, with one base chain and
// one rule per mark:
//
//	table inet tunplan {
//		chain prerouting {
//			type filter hook prerouting priority mangle; policy accept;
//			ip daddr 198.18.48.190 tcp dport 443 meta mark set 0x00000001
//			ip6 daddr 2001:2::190 udp dport 53 meta mark set 0x00000002
//		}
//	}
//
// Anything else in that table is foreign and removed: a rule of another shape, a second rule for
// one match, another chain, the chain with another type, hook, priority or policy, a table flag
// (dormant). Nothing outside the table is read or touched.
package nft

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/protocol"
)

// Module is the kernel module the rules need. In Debian 12's 6.1 kernel it holds every expression
// they use (meta, payload, cmp, immediate) and the inet filter chain type; it pulls in nfnetlink.
const Module = "nf_tables"

// Kernel is the nftables boundary: the table inet tunplan read whole, and transactions on it.
// Netlink is the host's.
type Kernel interface {
	// ReadTable returns what the table holds, or nil when there is no table inet tunplan.
	ReadTable() (*Ruleset, error)
	// WriteTable runs ops, in order, as one transaction: all of them take effect, or none.
	WriteTable(ops []Op) error
}

// Ruleset is what the table inet tunplan holds.
type Ruleset struct {
	Flags  uint32            // the table's flags: 0, or NFT_TABLE_F_DORMANT and the like
	Chains []*nftables.Chain // every chain of the table
	Rules  []*nftables.Rule  // every rule of those chains, each chain's in order; Rule.Chain names its chain
}

// Op is one message of a transaction on the table inet tunplan and its chain prerouting.
type Op struct {
	Verb   Verb
	Handle uint64     // the rule ReplaceRule and DelRule name
	Exprs  []expr.Any // the rule AddRule and ReplaceRule write
}

// Verb says what an Op does.
type Verb uint8

const (
	AddTable    Verb = iota + 1 // create the table if there is none (`nft add table inet tunplan`)
	DelTable                    // remove the table with all it holds
	AddChain                    // create the base chain if there is none (`nft add chain …`)
	AddRule                     // append a rule to the chain
	ReplaceRule                 // replace the rule Handle with Exprs
	DelRule                     // remove the rule Handle
)

// kind is the Change.Module of the steps.
const kind = "nft"

// Facts reads the table inet tunplan: its mark rules, sorted by Protocol, Address and Port, and
// what else it holds. There is no table: no marks and a nil table.
//
// google/nftables skips an expression it cannot decode; one that changes what a rule does (dup,
// fwd, tproxy) loads registers with more expressions that it does decode, so such a rule is still
// foreign.
func Facts(k Kernel) ([]protocol.Mark, *protocol.MarkTable, error) {
	rs, err := k.ReadTable()
	if err != nil {
		return nil, nil, fmt.Errorf("nft: read table inet tunplan: %w", err)
	}
	if rs == nil {
		return nil, nil, nil
	}
	rules, foreign := parse(rs)
	var out []protocol.Mark
	for _, r := range rules {
		out = append(out, r.mark)
	}
	slices.SortFunc(out, func(a, b protocol.Mark) int {
		return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), a.Address.Compare(b.Address), cmp.Compare(a.Port, b.Port))
	})
	return out, &protocol.MarkTable{Foreign: foreign}, nil
}

// rule is one of tunplan's rules in the table: its mark, and the handle that names it.
type rule struct {
	mark   protocol.Mark
	handle uint64
}

// parse splits a ruleset into tunplan's rules (the first rule of the chain for each match) and the
// number of foreign objects: the table's flags, chains that are not the base chain, and rules that
// are not mark rules of the chain or repeat a match.
func parse(rs *Ruleset) (rules []rule, foreign int) {
	if rs.Flags != 0 {
		foreign++
	}
	for _, c := range rs.Chains {
		if !ours(c) {
			foreign++
		}
	}
	seen := map[string]bool{}
	for _, r := range rs.Rules {
		m, err := decode(r)
		if err != nil || r.Chain == nil || r.Chain.Name != chainName || seen[m.Match()] {
			foreign++
			continue
		}
		seen[m.Match()] = true
		rules = append(rules, rule{m, r.Handle})
	}
	return rules, foreign
}

// Diff makes the steps from current and table (what Facts read) to want. A cleaning step comes
// first when the table holds something foreign; then a mark wanted and absent is added, one with
// another mark value replaced, one no longer wanted removed. When no mark is wanted, the last step
// removes the whole table.
//
// Each step reads the table again when it runs and finds its rule by match, so it needs no handle
// from Facts, and running it twice does what running it once did.
func Diff(k Kernel, want, current []protocol.Mark, table *protocol.MarkTable) []change.Step {
	have := map[string]protocol.Mark{}
	for _, c := range current {
		have[c.Match()] = c
	}
	foreign := 0
	if table != nil {
		foreign = table.Foreign
	}
	wanted := map[string]bool{}
	var steps []change.Step
	for _, w := range want {
		wanted[w.Match()] = true
		cur, ok := have[w.Match()]
		switch {
		case !ok:
			steps = append(steps, ruleStep(change.Create, w.Match(), "", shown(w), func() error { return put(k, w) }))
		case cur.Mark != w.Mark:
			steps = append(steps, ruleStep(change.Update, w.Match(), shown(cur), shown(w), func() error { return put(k, w) }))
		}
	}
	if len(wanted) > 0 && foreign > 0 {
		clean := tableStep(change.Update, foreignText(foreign), "none foreign", func() error { return clean(k) })
		steps = append([]change.Step{clean}, steps...)
	}
	for _, c := range current {
		if !wanted[c.Match()] {
			steps = append(steps, ruleStep(change.Delete, c.Match(), shown(c), "", func() error { return remove(k, c) }))
		}
	}
	if len(wanted) == 0 && (len(have) > 0 || table != nil) {
		before := "present"
		if foreign > 0 {
			before += ", " + foreignText(foreign)
		}
		steps = append(steps, tableStep(change.Delete, before, "", func() error { return drop(k) }))
	}
	return steps
}

// shown is how a change shows a rule's value: "mark 1".
func shown(m protocol.Mark) string { return "mark " + strconv.FormatUint(uint64(m.Mark), 10) }

func foreignText(n int) string {
	if n == 1 {
		return "1 foreign object"
	}
	return strconv.Itoa(n) + " foreign objects"
}

// ruleStep is a step on the rule of a match: "nft tcp/198.18.48.190:443".
func ruleStep(act change.Action, match, before, after string, do func() error) change.Step {
	return step("nft "+match, act, before, after, do)
}

// tableStep is a step on the table itself: "nft table inet tunplan".
func tableStep(act change.Action, before, after string, do func() error) change.Step {
	return step("nft table inet "+tableName, act, before, after, do)
}

func step(addr string, act change.Action, before, after string, do func() error) change.Step {
	return change.Step{
		Change: change.Change{Module: kind, Address: addr, Action: act, Before: before, After: after},
		Do: func() error {
			if err := do(); err != nil {
				return fmt.Errorf("%s: %w", addr, err)
			}
			return nil
		},
	}
}

// read reads the table for a step.
func read(k Kernel) (*Ruleset, error) {
	rs, err := k.ReadTable()
	if err != nil {
		return nil, fmt.Errorf("read table: %w", err)
	}
	return rs, nil
}

// write runs a step's transaction.
func write(k Kernel, what string, ops []Op) error {
	if err := k.WriteTable(ops); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// put makes m's rule what m says: replaced when the chain has a rule for its match with another
// mark, appended (with the table and chain, when missing) when it has none.
func put(k Kernel, m protocol.Mark) error {
	es, err := encode(m)
	if err != nil {
		return err
	}
	rs, err := read(k)
	if err != nil {
		return err
	}
	if rs != nil {
		rules, _ := parse(rs)
		for _, r := range rules {
			if r.mark.Match() != m.Match() {
				continue
			}
			if r.mark.Mark == m.Mark {
				return nil
			}
			return write(k, "replace rule", []Op{{Verb: ReplaceRule, Handle: r.handle, Exprs: es}})
		}
	}
	return write(k, "add rule", []Op{{Verb: AddTable}, {Verb: AddChain}, {Verb: AddRule, Exprs: es}})
}

// remove deletes every mark rule of the chain for m's match, whatever mark it sets.
func remove(k Kernel, m protocol.Mark) error {
	rs, err := read(k)
	if err != nil || rs == nil {
		return err
	}
	var ops []Op
	for _, r := range rs.Rules {
		got, err := decode(r)
		if err == nil && r.Chain != nil && r.Chain.Name == chainName && got.Match() == m.Match() {
			ops = append(ops, Op{Verb: DelRule, Handle: r.Handle})
		}
	}
	if len(ops) == 0 {
		return nil
	}
	return write(k, "remove rule", ops)
}

// clean rebuilds the table with tunplan's rules only, in one transaction: the table goes with all
// it holds and comes back with the base chain and the mark rules it had.
func clean(k Kernel) error {
	rs, err := read(k)
	if err != nil || rs == nil {
		return err
	}
	rules, foreign := parse(rs)
	if foreign == 0 {
		return nil
	}
	ops := []Op{{Verb: DelTable}, {Verb: AddTable}, {Verb: AddChain}}
	for _, r := range rules {
		es, err := encode(r.mark)
		if err != nil {
			return err
		}
		ops = append(ops, Op{Verb: AddRule, Exprs: es})
	}
	return write(k, "remove foreign objects", ops)
}

// drop removes the table with all it holds. Adding it first makes the transaction succeed when
// there is no table (what `nft destroy table` does on kernels that have it).
func drop(k Kernel) error {
	return write(k, "remove table", []Op{{Verb: AddTable}, {Verb: DelTable}})
}
