package fou

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/protocol"
)

// fake is the kernel's fou port list: one listener per family and port (and binding), as
// fou_add_to_port_list enforces; a port in use by another socket refuses an add.
type fake struct {
	ports []netlink.Fou
	busy  map[int]bool // UDP ports another socket holds
	ops   []string
}

func (f *fake) FouList(int) ([]netlink.Fou, error) { return slices.Clone(f.ports), nil }

func (f *fake) FouAdd(x netlink.Fou) error {
	f.ops = append(f.ops, fmt.Sprintf("add %d type %d proto %d", x.Port, x.EncapType, x.Protocol))
	if x.EncapType == netlink.FOU_ENCAP_GUE && x.Protocol != 0 {
		return fmt.Errorf("GUE encapsulation doesn't specify an IP protocol")
	}
	if f.busy[x.Port] {
		return syscall.EADDRINUSE
	}
	for _, p := range f.ports {
		if p.Port == x.Port && p.Family == x.Family && !bound(p) {
			return syscall.EALREADY
		}
	}
	f.ports = append(f.ports, x)
	return nil
}

func (f *fake) FouDel(x netlink.Fou) error {
	f.ops = append(f.ops, fmt.Sprintf("del %d", x.Port))
	for i, p := range f.ports {
		if p.Port == x.Port && p.Family == x.Family && !bound(p) {
			f.ports = slices.Delete(f.ports, i, i+1)
			return nil
		}
	}
	return syscall.ENOENT
}

func gue(port int) netlink.Fou {
	return netlink.Fou{Family: netlink.FAMILY_V4, Port: port, EncapType: netlink.FOU_ENCAP_GUE, Local: net.IPv4zero, Peer: net.IPv4zero}
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
		out = append(out, fmt.Sprintf("%c %s  %s", c.Action, c.Address, c.Shown()))
	}
	return strings.Join(out, "\n")
}

// Facts reads only the IPv4 wildcard listeners of the ports in scope: IPv6 ones, bound ones
// (local, peer, device) and other ports are not tunplan's.
func TestFacts(t *testing.T) {
	bound := gue(6081)
	bound.Local = net.ParseIP("198.18.1.1")
	dev := gue(6082)
	dev.IfIndex = 2
	v6 := gue(6080)
	v6.Family = netlink.FAMILY_V6
	direct := netlink.Fou{Family: netlink.FAMILY_V4, Port: 5555, EncapType: netlink.FOU_ENCAP_DIRECT, Protocol: 4}
	k := &fake{ports: []netlink.Fou{gue(7000), v6, bound, dev, direct, gue(6080), gue(9999)}}
	got, err := Facts(k, []uint16{5555, 6080, 6081, 6082, 7000})
	if err != nil {
		t.Fatal(err)
	}
	want := []protocol.FouPort{{Port: 5555, Type: protocol.FouDirect, Protocol: 4}, {Port: 6080, Type: protocol.FouGUE}, {Port: 7000, Type: protocol.FouGUE}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// Diff adds what is missing, replaces a listener of another type, removes what is owned and no
// longer wanted, and nothing when the kernel matches.
func TestDiff(t *testing.T) {
	k := &fake{}
	want := []protocol.FouPort{{Port: 6080, Type: protocol.FouGUE}, {Port: 6081, Type: protocol.FouGUE}}
	steps := Diff(k, want, nil)
	if r := render(steps); r != "+ fou port 6080  gue\n+ fou port 6081  gue" {
		t.Errorf("from nothing:\n%s", r)
	}
	run(t, steps)
	if fmt.Sprint(k.ops) != "[add 6080 type 2 proto 0 add 6081 type 2 proto 0]" {
		t.Errorf("ops %v", k.ops)
	}
	cur, _ := Facts(k, []uint16{6080, 6081})
	if steps := Diff(k, want, cur); len(steps) != 0 {
		t.Errorf("steps on a matching kernel:\n%s", render(steps))
	}
	// Drift: 6081 became a direct listener, 6080 removed by hand; the plan drops 6081 for 7000.
	k.ports = []netlink.Fou{{Family: netlink.FAMILY_V4, Port: 6081, EncapType: netlink.FOU_ENCAP_DIRECT, Protocol: 4}}
	cur, _ = Facts(k, []uint16{6080, 6081})
	steps = Diff(k, want, cur)
	if r := render(steps); r != "+ fou port 6080  gue\n~ fou port 6081  direct ipproto 4 => gue" {
		t.Errorf("drift:\n%s", r)
	}
	run(t, steps)
	want = []protocol.FouPort{{Port: 6080, Type: protocol.FouGUE}, {Port: 7000, Type: protocol.FouGUE}}
	cur, _ = Facts(k, []uint16{6080, 6081, 7000})
	steps = Diff(k, want, cur)
	if r := render(steps); r != "+ fou port 7000  gue\n- fou port 6081  gue" {
		t.Errorf("a port replaced:\n%s", r)
	}
	run(t, steps)
	if cur, _ = Facts(k, []uint16{6080, 6081, 7000}); fmt.Sprint(cur) != fmt.Sprint(want) {
		t.Errorf("after: %v", cur)
	}
}

// A port another socket holds fails with why.
func TestAddTakenPort(t *testing.T) {
	k := &fake{busy: map[int]bool{53: true}}
	err := Diff(k, []protocol.FouPort{{Port: 53, Type: protocol.FouGUE}}, nil)[0].Do()
	if err == nil || !strings.Contains(err.Error(), "fou port 53: add: UDP port 53 is taken by another socket on this host") {
		t.Errorf("got %v", err)
	}
}
