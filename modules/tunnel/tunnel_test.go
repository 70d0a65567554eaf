package tunnel

import (
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/protocol"
)

// fakeLinks answers as rtnetlink does: AddrList gives the addresses of the family asked for (an
// IPv4 address in 4 bytes, an IPv6 one in 16, with the flags the kernel reports), AddrAdd refuses
// an address the device has, AddrDel finds one by address and prefix length. It keeps the
// netlink.Addr each AddrAdd was given.
type fakeLinks struct {
	up    map[string]bool
	addrs map[string][]netlink.Addr
	added []netlink.Addr
}

func (f *fakeLinks) LinkByName(name string) (netlink.Link, error) {
	up, ok := f.up[name]
	if !ok {
		return nil, netlink.LinkNotFoundError{}
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	if up {
		attrs.Flags = net.FlagUp
	}
	return &netlink.Dummy{LinkAttrs: attrs}, nil
}

func (f *fakeLinks) LinkList() ([]netlink.Link, error) {
	var names []string
	for n := range f.up {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []netlink.Link
	for _, n := range names {
		l, _ := f.LinkByName(n)
		out = append(out, l)
	}
	return out, nil
}

func (f *fakeLinks) LinkSetUp(l netlink.Link) error   { f.up[l.Attrs().Name] = true; return nil }
func (f *fakeLinks) LinkSetDown(l netlink.Link) error { f.up[l.Attrs().Name] = false; return nil }

func (f *fakeLinks) AddrList(l netlink.Link, family int) ([]netlink.Addr, error) {
	var out []netlink.Addr
	for _, a := range f.addrs[l.Attrs().Name] {
		v4 := len(a.IP) == net.IPv4len
		if family == netlink.FAMILY_ALL || (family == netlink.FAMILY_V4) == v4 {
			out = append(out, a)
		}
	}
	return out, nil
}

// key is an address as the kernel finds it: address and prefix length.
func key(a *netlink.Addr) string {
	ones, _ := a.Mask.Size()
	return fmt.Sprintf("%s/%d", a.IP, ones)
}

func (f *fakeLinks) AddrAdd(l netlink.Link, a *netlink.Addr) error {
	for _, x := range f.addrs[l.Attrs().Name] {
		if key(&x) == key(a) {
			return syscall.EEXIST
		}
	}
	f.added = append(f.added, *a)
	stored := *a
	if len(a.IP) == net.IPv6len {
		stored.Flags |= unix.IFA_F_PERMANENT // as the kernel reports an address added by hand
	}
	f.addrs[l.Attrs().Name] = append(f.addrs[l.Attrs().Name], stored)
	return nil
}

func (f *fakeLinks) AddrDel(l netlink.Link, a *netlink.Addr) error {
	list := f.addrs[l.Attrs().Name]
	for i, x := range list {
		if key(&x) == key(a) {
			f.addrs[l.Attrs().Name] = append(list[:i], list[i+1:]...)
			return nil
		}
	}
	return syscall.EADDRNOTAVAIL
}

// kernelAddr is an address as rtnetlink lists it.
func kernelAddr(s string, flags int) netlink.Addr {
	p := netip.MustParsePrefix(s)
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	return netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), bits)}, Flags: flags}
}

func prefixes(ss ...string) []netip.Prefix {
	out := []netip.Prefix{}
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func run(t *testing.T, steps []change.Step) []string {
	t.Helper()
	var shown []string
	for _, s := range steps {
		shown = append(shown, fmt.Sprintf("%c %s  %s", s.Action, s.Address, s.Shown()))
		if err := s.Do(); err != nil {
			t.Fatal(err)
		}
	}
	return shown
}

// Facts reads the owned addresses of both families on the devices in scope, and leaves the others
// (an address not owned, an IPv6 link-local one) alone.
func TestFactsBothFamilies(t *testing.T) {
	k := &fakeLinks{up: map[string]bool{"tunl0": true, "ip6tnl0": false}, addrs: map[string][]netlink.Addr{
		"tunl0": {kernelAddr("198.18.48.180/32", 0), kernelAddr("198.18.48.9/32", 0)},
		"ip6tnl0": {kernelAddr("fe80::1/64", unix.IFA_F_PERMANENT), kernelAddr("2001:2::180/128", unix.IFA_F_PERMANENT|unix.IFA_F_NODAD),
			kernelAddr("2001:2::9/128", unix.IFA_F_PERMANENT|unix.IFA_F_NODAD)},
	}}
	got, err := Facts(k, map[string][]netip.Prefix{
		"tunl0":   prefixes("198.18.48.180/32", "198.18.48.181/32"),
		"ip6tnl0": prefixes("2001:2::180/128", "2001:2::181/128"),
		"gre0":    prefixes("198.18.48.182/32"),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []protocol.Link{
		{Name: "gre0", Down: true, Missing: true, Addresses: prefixes()},
		{Name: "ip6tnl0", Down: true, Addresses: prefixes("2001:2::180/128")},
		{Name: "tunl0", Addresses: prefixes("198.18.48.180/32")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("facts\n%+v\nwant\n%+v", got, want)
	}
}

// An IPv6 VIP is added as a /128 with IFA_F_NODAD and no broadcast, an IPv4 one as a /32 with its
// own address as broadcast; read back (the kernel adds flags of its own), they match by prefix and
// nothing is to do. An IPv6 VIP no longer wanted is removed.
func TestDiffIPv6AndIPv4(t *testing.T) {
	k := &fakeLinks{up: map[string]bool{"tunl0": false, "ip6tnl0": false}, addrs: map[string][]netlink.Addr{
		"ip6tnl0": {kernelAddr("fe80::1/64", unix.IFA_F_PERMANENT)},
	}}
	want := []protocol.Link{
		{Name: "ip6tnl0", Addresses: prefixes("2001:2::180/128", "2001:2::181/128")},
		{Name: "tunl0", Addresses: prefixes("198.18.48.180/32")},
	}
	scope := map[string][]netip.Prefix{}
	for _, l := range want {
		scope[l.Name] = l.Addresses
	}
	cur, err := Facts(k, scope)
	if err != nil {
		t.Fatal(err)
	}
	shown := run(t, Diff(k, want, cur))
	if w := "~ tunnel ip6tnl0  down => up\n" +
		"+ tunnel ip6tnl0 2001:2::180/128  present\n" +
		"+ tunnel ip6tnl0 2001:2::181/128  present\n" +
		"~ tunnel tunl0  down => up\n" +
		"+ tunnel tunl0 198.18.48.180/32  present"; strings.Join(shown, "\n") != w {
		t.Errorf("changes:\n%s\nwant\n%s", strings.Join(shown, "\n"), w)
	}
	var added []string
	for _, a := range k.added {
		added = append(added, fmt.Sprintf("%s brd %v flags %#x", a.IPNet, a.Broadcast, a.Flags))
	}
	if w := "2001:2::180/128 brd <nil> flags 0x2|2001:2::181/128 brd <nil> flags 0x2|198.18.48.180/32 brd 198.18.48.180 flags 0x0"; strings.Join(added, "|") != w {
		t.Errorf("added\n%s\nwant\n%s", strings.Join(added, "|"), w)
	}
	if cur, err = Facts(k, scope); err != nil || !reflect.DeepEqual(cur, want) {
		t.Fatalf("read back\n%+v, %v\nwant\n%+v", cur, err, want)
	}
	if steps := Diff(k, want, cur); len(steps) != 0 {
		t.Errorf("steps on devices that match: %v", change.Changes(steps))
	}

	want[0].Addresses = prefixes("2001:2::181/128")
	if shown := run(t, Diff(k, want, cur)); strings.Join(shown, "\n") != "- tunnel ip6tnl0 2001:2::180/128  present" {
		t.Errorf("changes: %q", shown)
	}
	if cur, err = Facts(k, scope); err != nil || !reflect.DeepEqual(cur, want) {
		t.Errorf("after the removal\n%+v, %v\nwant\n%+v", cur, err, want)
	}
	if n := len(k.addrs["ip6tnl0"]); n != 2 {
		t.Errorf("ip6tnl0 has %d addresses, want the link-local one and 2001:2::181", n)
	}
}

// prefixOf reads an address of either family whether its IP is 4 or 16 bytes long: the family is
// its mask's.
func TestPrefixOf(t *testing.T) {
	for _, tc := range []struct {
		a    netlink.Addr
		want string
	}{
		{netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(198, 18, 48, 180).To4(), Mask: net.CIDRMask(32, 32)}}, "198.18.48.180/32"},
		{netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(198, 18, 48, 180), Mask: net.CIDRMask(32, 32)}}, "198.18.48.180/32"},
		{netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("2001:2::180"), Mask: net.CIDRMask(128, 128)}}, "2001:2::180/128"},
		{netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("fe80::1"), Mask: net.CIDRMask(64, 128)}}, "fe80::1/64"},
		{netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("2001:2::180"), Mask: net.CIDRMask(32, 32)}}, "invalid Prefix"},
		{netlink.Addr{}, "invalid Prefix"},
	} {
		p, ok := prefixOf(tc.a)
		if p.String() != tc.want || ok != p.IsValid() {
			t.Errorf("%v: %s %v, want %s", tc.a.IPNet, p, ok, tc.want)
		}
	}
}

// Inventory lists IPv4 addresses only (`tunplan import` writes IPv4 services), even from a kernel
// boundary that answers every family.
func TestInventoryIPv4Only(t *testing.T) {
	k := &fakeLinks{up: map[string]bool{"tunl0": true, "eth0": true}, addrs: map[string][]netlink.Addr{
		"tunl0": {kernelAddr("198.18.48.180/32", 0), kernelAddr("2001:2::180/128", unix.IFA_F_NODAD)},
		"eth0":  {kernelAddr("198.18.1.183/24", 0), kernelAddr("2001:2:0:1::183/64", 0)},
	}}
	onDevice, others, err := Inventory(allFamilies{k}, "tunl0")
	if err != nil || fmt.Sprint(onDevice) != "[198.18.48.180/32]" || fmt.Sprint(others) != "[198.18.1.183]" {
		t.Errorf("%v %v %v", onDevice, others, err)
	}
}

// allFamilies answers every family whatever is asked, as the engine's fake does.
type allFamilies struct{ *fakeLinks }

func (a allFamilies) AddrList(l netlink.Link, _ int) ([]netlink.Addr, error) {
	return a.fakeLinks.AddrList(l, netlink.FAMILY_ALL)
}
