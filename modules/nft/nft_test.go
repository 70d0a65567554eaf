package nft

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/protocol"
)

// fake is the kernel's table inet tunplan: a transaction applies whole or not at all, a rule
// handle is never reused, and what nf_tables refuses is refused (a chain or rule without its
// table, a rule handle that is not there, the base chain added again with another hook).
type fake struct {
	rs     *Ruleset // nil: no table
	handle uint64   // the last handle given
	ops    []string
}

func (f *fake) ReadTable() (*Ruleset, error) {
	if f.rs == nil {
		return nil, nil
	}
	return &Ruleset{Flags: f.rs.Flags, Chains: slices.Clone(f.rs.Chains), Rules: slices.Clone(f.rs.Rules)}, nil
}

func (f *fake) WriteTable(ops []Op) error {
	rs, _ := f.ReadTable()
	var log []string
	at := func(h uint64) int {
		if rs == nil || h == 0 {
			return -1
		}
		return slices.IndexFunc(rs.Rules, func(r *nftables.Rule) bool { return r.Handle == h })
	}
	for _, op := range ops {
		switch op.Verb {
		case AddTable:
			log = append(log, "add table")
			if rs == nil {
				rs = &Ruleset{}
			}
			rs.Flags = 0
		case DelTable:
			log = append(log, "delete table")
			if rs == nil {
				return syscall.ENOENT
			}
			rs = nil
		case AddChain:
			log = append(log, "add chain")
			if rs == nil {
				return syscall.ENOENT
			}
			i := slices.IndexFunc(rs.Chains, func(c *nftables.Chain) bool { return c.Name == chainName })
			switch {
			case i < 0:
				rs.Chains = append(rs.Chains, chain())
			case !ours(rs.Chains[i]):
				return syscall.EEXIST
			}
		case AddRule:
			if rs == nil || !slices.ContainsFunc(rs.Chains, func(c *nftables.Chain) bool { return c.Name == chainName }) {
				return syscall.ENOENT
			}
			f.handle++
			log = append(log, fmt.Sprintf("add rule %d", f.handle))
			rs.Rules = append(rs.Rules, &nftables.Rule{Chain: &nftables.Chain{Name: chainName}, Handle: f.handle, Exprs: op.Exprs})
		case ReplaceRule:
			i := at(op.Handle)
			if i < 0 {
				return syscall.ENOENT
			}
			f.handle++
			log = append(log, fmt.Sprintf("replace rule %d with %d", op.Handle, f.handle))
			rs.Rules = slices.Clone(rs.Rules)
			rs.Rules[i] = &nftables.Rule{Chain: rs.Rules[i].Chain, Handle: f.handle, Exprs: op.Exprs}
		case DelRule:
			i := at(op.Handle)
			if i < 0 {
				return syscall.ENOENT
			}
			log = append(log, fmt.Sprintf("delete rule %d", op.Handle))
			rs.Rules = slices.Delete(slices.Clone(rs.Rules), i, i+1)
		}
	}
	f.rs = rs
	f.ops = append(f.ops, strings.Join(log, ", "))
	return nil
}

// add puts rules in the fake as someone else would: in chain, with the expressions given.
func (f *fake) add(t *testing.T, chain string, es ...[]expr.Any) {
	t.Helper()
	if f.rs == nil {
		f.rs = &Ruleset{}
	}
	for _, e := range es {
		f.handle++
		f.rs.Rules = append(f.rs.Rules, &nftables.Rule{Chain: &nftables.Chain{Name: chain}, Handle: f.handle, Exprs: e})
	}
}

func rules(t *testing.T, ms ...protocol.Mark) [][]expr.Any {
	t.Helper()
	var out [][]expr.Any
	for _, m := range ms {
		es, err := encode(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, es)
	}
	return out
}

func run(t *testing.T, steps []change.Step) {
	t.Helper()
	for _, s := range steps {
		if err := s.Do(); err != nil {
			t.Fatal(err)
		}
	}
}

func render(steps []change.Step) string {
	var out []string
	for _, c := range change.Changes(steps) {
		if c.Module != "nft" {
			out = append(out, "module "+c.Module)
		}
		out = append(out, fmt.Sprintf("%c %s  %s", c.Action, c.Address, c.Shown()))
	}
	return strings.Join(out, "\n")
}

// facts is what Facts read.
type facts struct {
	marks []protocol.Mark
	table *protocol.MarkTable
}

func readFacts(t *testing.T, k Kernel) facts {
	t.Helper()
	marks, table, err := Facts(k)
	if err != nil {
		t.Fatal(err)
	}
	return facts{marks, table}
}

// diff is Diff from what Facts read.
func diff(k Kernel, want []protocol.Mark, cur facts) []change.Step {
	return Diff(k, want, cur.marks, cur.table)
}

var (
	web  = mark("tcp", "198.18.48.190", 443, 1)
	dns  = mark("udp", "198.18.48.190", 53, 2)
	web6 = mark("tcp", "2001:2::190", 443, 3)
)

// Facts reads no table as nothing, an empty table as a table without marks, and the mark rules
// sorted.
func TestFacts(t *testing.T) {
	k := &fake{}
	if got := readFacts(t, k); got.marks != nil || got.table != nil {
		t.Errorf("no table: %+v", got)
	}
	k.rs = &Ruleset{Chains: []*nftables.Chain{chain()}}
	if got := readFacts(t, k); got.marks != nil || !reflect.DeepEqual(got.table, &protocol.MarkTable{}) {
		t.Errorf("an empty table: %+v", got)
	}
	k.add(t, chainName, rules(t, web6, web, dns)...)
	if got := readFacts(t, k); !reflect.DeepEqual(got.marks, []protocol.Mark{web, web6, dns}) || got.table.Foreign != 0 {
		t.Errorf("got %+v", got)
	}
}

// Foreign objects are counted: a rule of another shape, a second rule for a
// match, a mark rule in another chain, another chain, the base chain with another policy, the
// dormant flag. The first rule of a match is tunplan's.
func TestFactsForeign(t *testing.T) {
	other := mark("tcp", "198.18.48.190", 443, 9)
	k := &fake{}
	k.add(t, chainName, rules(t, web, other)...)
	k.add(t, chainName, []expr.Any{&expr.Counter{}})
	k.add(t, "input", rules(t, dns)...)
	drop := chain()
	*drop.Policy = nftables.ChainPolicyDrop
	k.rs.Chains = []*nftables.Chain{drop, {Name: "input", Table: table()}}
	k.rs.Flags = 1 // NFT_TABLE_F_DORMANT
	if got := readFacts(t, k); !reflect.DeepEqual(got.marks, []protocol.Mark{web}) || got.table.Foreign != 6 {
		t.Errorf("got %+v, %+v", got.marks, got.table)
	}
}

// Diff adds what is missing, replaces a rule whose mark differs, removes what is no longer
// wanted, and does nothing when the table matches; each step reads the table again, so running it
// twice changes nothing more.
func TestDiff(t *testing.T) {
	k := &fake{}
	want := []protocol.Mark{web, web6, dns}
	steps := Diff(k, want, nil, nil)
	if r := render(steps); r != "+ nft tcp/198.18.48.190:443  mark 1\n+ nft tcp/[2001:2::190]:443  mark 3\n+ nft udp/198.18.48.190:53  mark 2" {
		t.Errorf("from nothing:\n%s", r)
	}
	run(t, steps)
	run(t, steps[:1]) // again: the rule is there
	if got := strings.Join(k.ops, "; "); got != "add table, add chain, add rule 1; add table, add chain, add rule 2; add table, add chain, add rule 3" {
		t.Errorf("ops: %s", got)
	}
	cur := readFacts(t, k)
	if !reflect.DeepEqual(cur.marks, want) {
		t.Fatalf("after: %v", cur)
	}
	if steps := diff(k, want, cur); len(steps) != 0 {
		t.Errorf("steps on a matching table:\n%s", render(steps))
	}

	web2 := web
	web2.Mark = 7
	want = []protocol.Mark{web2, dns}
	steps = diff(k, want, cur)
	if r := render(steps); r != "~ nft tcp/198.18.48.190:443  mark 1 => mark 7\n- nft tcp/[2001:2::190]:443  mark 3" {
		t.Errorf("update and delete:\n%s", r)
	}
	k.ops = nil
	run(t, steps)
	run(t, steps)
	if got := strings.Join(k.ops, "; "); got != "replace rule 1 with 4; delete rule 2" {
		t.Errorf("ops: %s", got)
	}
	if cur = readFacts(t, k); !reflect.DeepEqual(cur.marks, []protocol.Mark{web2, dns}) {
		t.Errorf("after: %v", cur)
	}
}

// With no mark wanted, the rules go and then the table, as the last step; an empty table goes too.
func TestDiffRemovesTable(t *testing.T) {
	k := &fake{}
	k.rs = &Ruleset{Chains: []*nftables.Chain{chain()}}
	k.add(t, chainName, rules(t, web, dns)...)
	cur := readFacts(t, k)
	steps := diff(k, nil, cur)
	if r := render(steps); r != "- nft tcp/198.18.48.190:443  mark 1\n- nft udp/198.18.48.190:53  mark 2\n- nft table inet tunplan  present" {
		t.Errorf("remove all:\n%s", r)
	}
	run(t, steps)
	run(t, steps[len(steps)-1:]) // again: there is no table
	if k.rs != nil || strings.Join(k.ops, "; ") != "delete rule 1; delete rule 2; add table, delete table; add table, delete table" {
		t.Errorf("table %v after %v", k.rs, k.ops)
	}

	k.rs = &Ruleset{Chains: []*nftables.Chain{chain()}}
	steps = diff(k, nil, readFacts(t, k))
	if r := render(steps); r != "- nft table inet tunplan  present" {
		t.Errorf("an empty table:\n%s", r)
	}
	run(t, steps)
	if k.rs != nil {
		t.Errorf("table left: %v", k.rs)
	}
	if steps := Diff(k, nil, nil, nil); len(steps) != 0 {
		t.Errorf("no table, nothing wanted:\n%s", render(steps))
	}
}

// Foreign objects are removed first, in one transaction that rebuilds the table with tunplan's
// rules; with no mark wanted, they go with the table.
func TestDiffRemovesForeign(t *testing.T) {
	k := &fake{}
	k.rs = &Ruleset{Chains: []*nftables.Chain{chain(), {Name: "input", Table: table()}}}
	k.add(t, chainName, rules(t, web)...)
	k.add(t, chainName, []expr.Any{&expr.Counter{}})
	cur := readFacts(t, k)
	steps := diff(k, []protocol.Mark{web, dns}, cur)
	if r := render(steps); r != "~ nft table inet tunplan  2 foreign objects => none foreign\n+ nft udp/198.18.48.190:53  mark 2" {
		t.Errorf("foreign:\n%s", r)
	}
	run(t, steps)
	if got := strings.Join(k.ops, "; "); got != "delete table, add table, add chain, add rule 3; add table, add chain, add rule 4" {
		t.Errorf("ops: %s", got)
	}
	if cur = readFacts(t, k); !reflect.DeepEqual(cur.marks, []protocol.Mark{web, dns}) {
		t.Errorf("after: %v", cur)
	}
	if steps := diff(k, []protocol.Mark{web, dns}, cur); len(steps) != 0 {
		t.Errorf("steps after cleaning:\n%s", render(steps))
	}

	// A base chain of another hook is rebuilt before a rule is added to it (adding the chain
	// again would fail).
	k = &fake{}
	forward := chain()
	forward.Hooknum = nftables.ChainHookForward
	k.rs = &Ruleset{Chains: []*nftables.Chain{forward}}
	steps = diff(k, []protocol.Mark{web}, readFacts(t, k))
	if r := render(steps); r != "~ nft table inet tunplan  1 foreign object => none foreign\n+ nft tcp/198.18.48.190:443  mark 1" {
		t.Errorf("another hook:\n%s", r)
	}
	run(t, steps)
	if cur := readFacts(t, k); !reflect.DeepEqual(cur.marks, []protocol.Mark{web}) || !ours(k.rs.Chains[0]) {
		t.Errorf("after: %v, chain %+v", cur, k.rs.Chains)
	}

	k.add(t, chainName, []expr.Any{&expr.Counter{}})
	steps = diff(k, nil, readFacts(t, k))
	if r := render(steps); r != "- nft tcp/198.18.48.190:443  mark 1\n- nft table inet tunplan  present, 1 foreign object" {
		t.Errorf("nothing wanted:\n%s", r)
	}
	run(t, steps)
	if k.rs != nil {
		t.Errorf("table left: %v", k.rs)
	}
}

// A mark that cannot be a rule fails its step with why.
func TestDiffRefuses(t *testing.T) {
	err := Diff(&fake{}, []protocol.Mark{mark("sctp", "198.18.48.190", 443, 1)}, nil, nil)[0].Do()
	if err == nil || err.Error() != `nft sctp/198.18.48.190:443: protocol "sctp": a mark rule matches tcp or udp` {
		t.Errorf("got %v", err)
	}
}
