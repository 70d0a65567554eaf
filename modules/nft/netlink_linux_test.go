package nft

import (
	"errors"
	"fmt"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunplan/tunplan/modules/internal/netnstest"
	"github.com/tunplan/tunplan/modules/protocol"
)

// TestNetlinkMarks writes and reads a real kernel's table inet tunplan, in a network namespace of
// its own, through Open as the helper does.
func TestNetlinkMarks(t *testing.T) {
	netnstest.Run(t, func(netlink.Link) (string, error) { return marks(t) })
}

// marks runs in the namespace; it returns why the kernel cannot be tested, or what stopped the
// test.
func marks(t *testing.T) (string, error) {
	k := Netlink{}
	cur, tbl, err := Facts(k)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EPROTONOSUPPORT) {
		return "no nf_tables: " + err.Error(), nil
	}
	if err != nil || cur != nil || tbl != nil {
		return "", fmt.Errorf("a new namespace: %v, %v, %v", cur, tbl, err)
	}
	apply := func(want []protocol.Mark, changes string) error {
		cur, tbl, err := Facts(k)
		if err != nil {
			return err
		}
		steps := Diff(k, want, cur, tbl)
		if got := render(steps); got != changes {
			return fmt.Errorf("changes from %v to %v:\n%s\nwant\n%s", cur, want, got, changes)
		}
		for _, s := range steps {
			if err := s.Do(); err != nil {
				return err
			}
		}
		if cur, _, err = Facts(k); err != nil || !reflect.DeepEqual(cur, want) {
			return fmt.Errorf("after the changes to %v: %v, %v", want, cur, err)
		}
		return nil
	}

	want := []protocol.Mark{web, web6, dns}
	if err := apply(want, "+ nft tcp/198.18.48.190:443  mark 1\n+ nft tcp/[2001:2::190]:443  mark 3\n+ nft udp/198.18.48.190:53  mark 2"); err != nil {
		return "", err
	}
	listed(t, `table inet tunplan {
	chain prerouting {
		type filter hook prerouting priority mangle; policy accept;
		ip daddr 198.18.48.190 tcp dport 443 meta mark set 0x00000001
		ip6 daddr 2001:2::190 tcp dport 443 meta mark set 0x00000003
		ip daddr 198.18.48.190 udp dport 53 meta mark set 0x00000002
	}
}`)

	// A rule removed behind tunplan's back is one to create again; a rule added is foreign.
	raw, err := nftables.New()
	if err != nil {
		return "", err
	}
	rs, err := k.ReadTable()
	if err != nil {
		return "", err
	}
	if err := raw.DelRule(rs.Rules[1]); err != nil {
		return "", err
	}
	raw.AddRule(&nftables.Rule{Table: table(), Chain: chain(), Exprs: []expr.Any{&expr.Counter{}}})
	if err := raw.Flush(); err != nil {
		return "", err
	}
	if err := apply(want, "~ nft table inet tunplan  1 foreign object => none foreign\n+ nft tcp/[2001:2::190]:443  mark 3"); err != nil {
		return "", err
	}

	web2 := web
	web2.Mark = 7
	if err := apply([]protocol.Mark{web2, dns}, "~ nft tcp/198.18.48.190:443  mark 1 => mark 7\n- nft tcp/[2001:2::190]:443  mark 3"); err != nil {
		return "", err
	}
	if err := apply(nil, "- nft tcp/198.18.48.190:443  mark 7\n- nft udp/198.18.48.190:53  mark 2\n- nft table inet tunplan  present"); err != nil {
		return "", err
	}
	if rs, err := k.ReadTable(); rs != nil || err != nil {
		return "", fmt.Errorf("the table after removing all: %+v, %v", rs, err)
	}
	// Removing a table that is not there succeeds.
	if err := drop(k); err != nil {
		return "", err
	}
	return "", nil
}

// listed checks what an operator sees with nft, where it is installed.
func listed(t *testing.T, want string) {
	if _, err := exec.LookPath("nft"); err != nil {
		t.Log("no nft to list the table with")
		return
	}
	out, err := exec.Command("nft", "list", "table", "inet", tableName).CombinedOutput()
	if got := strings.TrimSpace(string(out)); err != nil || got != want {
		t.Errorf("nft list table inet tunplan: %v\n%s\nwant\n%s", err, got, want)
	}
}
