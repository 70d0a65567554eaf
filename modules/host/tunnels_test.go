package host

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	cipvs "github.com/cloudflare/ipvs"
	"github.com/vishvananda/netlink"

	"github.com/tunplan/tunplan/modules/protocol"
)

var (
	vipGUE = netip.MustParseAddr("198.18.48.181")
	vipGRE = netip.MustParseAddr("198.18.48.182")
	gue    = protocol.Tunnel{Type: protocol.TunnelGUE, Port: 6080}
	gre    = protocol.Tunnel{Type: protocol.TunnelGRE}
)

// tunnelDirector is director("rr", 1, 1) with a GUE and a GRE service next to the IPIP one.
func tunnelDirector(g, r protocol.Tunnel) protocol.State {
	st := director("rr", 1, 1)
	st.Links[0].Addresses = append(st.Links[0].Addresses, netip.PrefixFrom(vipGUE, 32), netip.PrefixFrom(vipGRE, 32))
	for _, x := range []struct {
		vip netip.Addr
		tun protocol.Tunnel
	}{{vipGUE, g}, {vipGRE, r}} {
		st.Services = append(st.Services, protocol.Service{Protocol: "tcp", Address: x.vip, Port: 80, Scheduler: "rr", Destinations: []protocol.Destination{
			{Address: rip1, Port: 80, Weight: 1, Forward: "tunnel", Tunnel: x.tun},
			{Address: rip2, Port: 80, Weight: 1, Forward: "tunnel", Tunnel: x.tun},
		}})
	}
	return st
}

// tunnelRealserver is what the plan makes of a realserver of an IPIP, a GUE and a GRE service.
func tunnelRealserver() protocol.State {
	return protocol.State{
		Modules: []string{"fou", "ip_gre", "ipip"},
		Sysctls: []protocol.Sysctl{
			{Key: "net.ipv4.conf.all.rp_filter", Value: "0"}, {Key: "net.ipv4.conf.gre0.rp_filter", Value: "0"}, {Key: "net.ipv4.conf.tunl0.rp_filter", Value: "0"},
		},
		Links: []protocol.Link{
			{Name: "gre0", Addresses: []netip.Prefix{netip.PrefixFrom(vipGRE, 32)}},
			{Name: "tunl0", Addresses: []netip.Prefix{netip.PrefixFrom(vip, 32), netip.PrefixFrom(vipGUE, 32)}},
		},
		Fou: []protocol.FouPort{{Port: 6080, Type: protocol.FouGUE}},
	}
}

func shown(resp protocol.Response) string {
	var out []string
	for _, c := range resp.Changes {
		out = append(out, fmt.Sprintf("%c %s  %s", c.Action, c.Address, c.Shown()))
	}
	return strings.Join(out, "\n")
}

// A director's GUE and GRE destinations carry their tunnel to the kernel, are read back exactly
// (over netlink: every read asks for the tunnels), and a tunnel changed by hand is drift, shown
// and fixed as an update of the destination.
func TestTunnelDirector(t *testing.T) {
	f := newFake()
	e := newEngine(t, f)
	want := tunnelDirector(gue, gre)
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: want, RunID: "r1"})
	d := f.svcs["6/198.18.48.181:80"].dests["198.18.1.183:80"]
	if d.FwdMethod != cipvs.Tunnel || d.TunnelType != cipvs.GUE || d.TunnelPort != 6080 || d.TunnelFlags != 0 {
		t.Errorf("GUE destination in the kernel: %+v", d)
	}
	if d := f.svcs["6/198.18.48.182:80"].dests["198.18.10.182:80"]; d.TunnelType != cipvs.GRE {
		t.Errorf("GRE destination in the kernel: %+v", d)
	}
	if d := f.svcs["6/198.18.48.180:80"].dests["198.18.10.182:80"]; d.TunnelType != cipvs.IPIP {
		t.Errorf("IPIP destination in the kernel: %+v", d)
	}
	if r := mustHandle(t, e, protocol.Request{Op: protocol.OpDiff, Desired: want}); len(r.Changes) != 0 {
		t.Errorf("diff after apply:\n%s", shown(r))
	}
	if slices.Contains(f.exact, false) {
		t.Errorf("destinations read without their tunnels: %v", f.exact)
	}
	// The GUE port changed by hand.
	d.TunnelPort = 6081
	f.svcs["6/198.18.48.181:80"].dests["198.18.1.183:80"] = d
	r := mustHandle(t, e, protocol.Request{Op: protocol.OpDiff, Desired: want})
	if w := "~ ipvs tcp/198.18.48.181:80 -> 198.18.1.183:80  weight=1 fwd=tunnel tun=gue:6081 => weight=1 fwd=tunnel tun=gue:6080"; shown(r) != w {
		t.Errorf("drift:\n%s\nwant\n%s", shown(r), w)
	}
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: want, RunID: "r2"})
	if d := f.svcs["6/198.18.48.181:80"].dests["198.18.1.183:80"]; d.TunnelPort != 6080 {
		t.Errorf("drift not fixed: %+v", d)
	}
	// Checksums on, then the plan goes back to IPIP for the GUE service: an update in place.
	csum := protocol.Tunnel{Type: protocol.TunnelGUE, Port: 6080, Checksum: true, RemoteChecksum: true}
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: tunnelDirector(csum, gre), RunID: "r3"})
	if d := f.svcs["6/198.18.48.181:80"].dests["198.18.1.183:80"]; d.TunnelFlags != cipvs.TunnelEncapChecksum|cipvs.TunnelEncapRemoteChecksum {
		t.Errorf("flags: %+v", d)
	}
	r = mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: tunnelDirector(protocol.Tunnel{}, gre), RunID: "r4"})
	if !strings.Contains(shown(r), "~ ipvs tcp/198.18.48.181:80 -> 198.18.1.183:80  weight=1 fwd=tunnel tun=gue:6080,csum,remcsum => weight=1 fwd=tunnel\n") {
		t.Errorf("back to IPIP:\n%s", shown(r))
	}
	if d := f.svcs["6/198.18.48.181:80"].dests["198.18.1.183:80"]; d.TunnelType != cipvs.IPIP || d.TunnelPort != 0 {
		t.Errorf("back to IPIP: %+v", d)
	}
}

// A host that owns a GUE service reads its destinations exactly even when the plan asks for IPIP
// only: the latest generation says GUE is owned. Otherwise a plan going back to IPIP would read the
// GUE destinations as IPIP (as /proc/net/ip_vs gives them) and change nothing.
func TestOwnedTunnelsAreReadExactly(t *testing.T) {
	f := newFake()
	e := newEngine(t, f)
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: tunnelDirector(gue, gue), RunID: "r1"})
	latest, err := e.latestGeneration()
	if err != nil {
		t.Fatal(err)
	}
	if sc := scopeOf(latest.State); !sc.tunnels || len(latest.State.Services[1].Destinations) != 1 || latest.State.Services[1].Destinations[0].Tunnel != gue {
		t.Errorf("the latest generation's scope: %+v", latest.State.Services)
	}
	ipip := tunnelDirector(protocol.Tunnel{}, protocol.Tunnel{})
	f.exact = nil
	r := mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: ipip, RunID: "r2"})
	if n := strings.Count(shown(r), "tun=gue:6080 => weight=1 fwd=tunnel"); n != 4 || slices.Contains(f.exact, false) {
		t.Errorf("%d updates (reads exact: %v):\n%s", n, f.exact, shown(r))
	}
	// Now IPIP only is owned and wanted: the fast read is allowed again.
	f.exact = nil
	mustHandle(t, e, protocol.Request{Op: protocol.OpDiff, Desired: ipip})
	if !slices.Equal(f.exact, []bool{false}) {
		t.Errorf("reads of an IPIP-only host: %v", f.exact)
	}
}

// A director refuses, in diff and in apply and before anything changes, a tunnel its kernel cannot
// make: GUE before 5.2, GUE with checksums and GRE before 5.3. IPIP never reads the release.
func TestTunnelNeedsItsKernel(t *testing.T) {
	csum := protocol.Tunnel{Type: protocol.TunnelGUE, Port: 6080, Checksum: true}
	for _, c := range []struct {
		release string
		want    protocol.State
		err     string
	}{
		{"4.19.0-27-amd64", tunnelDirector(gue, protocol.Tunnel{}), "tcp/198.18.48.181:80 -> 198.18.1.183 tunnels by GUE (gue:6080), which IPVS does from Linux 5.2 on, and this host runs 4.19.0-27-amd64"},
		{"5.2.21", tunnelDirector(protocol.Tunnel{}, gre), "tunnels by GRE (gre), which IPVS does from Linux 5.3 on, and this host runs 5.2.21"},
		{"5.2.0", tunnelDirector(csum, protocol.Tunnel{}), "tunnels by GUE with checksums (gue:6080,csum), which IPVS does from Linux 5.3 on"},
		{"5.2.0", tunnelDirector(gue, protocol.Tunnel{}), ""},
		{"5.3.0", tunnelDirector(csum, gre), ""},
		{"6.1.0-18-amd64", tunnelDirector(gue, gre), ""},
		{"garbage", tunnelDirector(gue, gre), `cannot read the kernel release "garbage"`},
		{"", director("rr", 1, 1), ""},
	} {
		t.Run(c.release, func(t *testing.T) {
			f := newFake()
			e := newEngine(t, f)
			reads := 0
			e.Release = func() (string, error) {
				reads++
				if c.release == "" {
					return "", errors.New("must not be read")
				}
				return c.release, nil
			}
			for _, op := range []protocol.Op{protocol.OpDiff, protocol.OpApply} {
				r := e.Handle(protocol.Request{Op: op, Desired: c.want})
				if c.err == "" {
					if r.Error != "" {
						t.Errorf("%s: %s", op, r.Error)
					}
					continue
				}
				if !strings.Contains(r.Error, c.err) || len(r.Changes) != 0 {
					t.Errorf("%s: %q, want %q", op, r.Error, c.err)
				}
			}
			if c.err != "" && (f.calls != 0 || len(f.svcs) != 0) {
				t.Errorf("the kernel changed: %d writes\n%s", f.calls, f.dump())
			}
			if c.release == "" && reads != 0 {
				t.Errorf("IPIP read the release %d times", reads)
			}
		})
	}
	if _, _, err := parseRelease("6.10-rc1"); err != nil {
		t.Error(err)
	}
}

// A realserver of IPIP, GUE and GRE services gets fou and ip_gre, a fou listener on the GUE port,
// gre0 up with the GRE VIPs and rp_filter 0 on gre0; drift on the listener (removed, replaced) is
// seen and fixed; a failed listener is restored; rollback and destroy remove it; boot restores it.
func TestTunnelRealserver(t *testing.T) {
	f := newFake()
	root := t.TempDir()
	e := bootEngine(t, f, filepath.Join(t.TempDir(), "state"), root, true)
	want := tunnelRealserver()
	r := mustHandle(t, e, protocol.Request{Op: protocol.OpDiff, Desired: want})
	for _, c := range []string{
		"+ kmod fou  loaded", "+ kmod ip_gre  loaded", "~ tunnel gre0  absent => up", "+ tunnel gre0 198.18.48.182/32  present",
		"+ sysctl net.ipv4.conf.gre0.rp_filter  0", "+ fou port 6080  gue",
	} {
		if !strings.Contains(shown(r)+"\n", c+"\n") {
			t.Errorf("diff lacks %q:\n%s", c, shown(r))
		}
	}
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: want, RunID: "r1"})
	good := f.dump()
	for _, l := range []string{"fou 6080 type=2", "link gre0 up=true [198.18.48.182/32]", "link tunl0 up=true [198.18.48.180/32 198.18.48.181/32]", "sysctl net.ipv4.conf.gre0.rp_filter=0"} {
		if !strings.Contains(good+"\n", l+"\n") {
			t.Errorf("kernel lacks %q:\n%s", l, good)
		}
	}
	if mods := read(t, root, protocol.ModulesLoad); !strings.HasSuffix(mods, "\nfou\nip_gre\nipip\n") {
		t.Errorf("modules-load.d:\n%s", mods)
	}
	if s := read(t, root, protocol.SysctlFile); !strings.Contains(s, "net.ipv4.conf.gre0.rp_filter = 0\n") {
		t.Errorf("sysctl.d:\n%s", s)
	}
	// Drift: the listener removed by hand, then one of another type in its place.
	delete(f.fou, 6080)
	if r := mustHandle(t, e, protocol.Request{Op: protocol.OpDiff, Desired: want}); shown(r) != "+ fou port 6080  gue" {
		t.Errorf("listener removed:\n%s", shown(r))
	}
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: want, RunID: "r2"})
	if f.dump() != good {
		t.Errorf("not fixed:\n%s", f.dump())
	}
	x := f.fou[6080]
	x.EncapType, x.Protocol = 1, 4
	f.fou[6080] = x
	if r := mustHandle(t, e, protocol.Request{Op: protocol.OpDiff, Desired: want}); shown(r) != "~ fou port 6080  direct ipproto 4 => gue" {
		t.Errorf("listener replaced:\n%s", shown(r))
	}
	mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: want, RunID: "r3"})
	if f.dump() != good {
		t.Errorf("not fixed:\n%s", f.dump())
	}
	// A second GUE port whose listener fails: the host is put back.
	more := tunnelRealserver()
	more.Fou = append(more.Fou, protocol.FouPort{Port: 6081, Type: protocol.FouGUE})
	f.failOn = "fou add 6081"
	if r := e.Handle(protocol.Request{Op: protocol.OpApply, Desired: more, RunID: "r4"}); r.Outcome != protocol.Restored || !strings.Contains(r.Error, "fou port 6081: add: fake: fou add 6081 refused") {
		t.Errorf("failed listener: %+v", r)
	}
	if f.dump() != good {
		t.Errorf("not restored:\n%s", f.dump())
	}
	// Boot: a rebooted kernel gets it all back.
	rebooted := newFake()
	var log bytes.Buffer
	if err := bootEngine(t, rebooted, e.Dir, root, true).Restore(&log, false); err != nil {
		t.Fatal(err)
	}
	if rebooted.dump() != good || !strings.Contains(log.String(), "+ fou port 6080  gue") {
		t.Errorf("after a reboot:\n%s\nlog:\n%s", rebooted.dump(), log.String())
	}
	// Rollback to before tunplan: no listener, no VIP on gre0 (left down: it did not exist).
	mustHandle(t, e, protocol.Request{Op: protocol.OpRollback, To: new(int), RunID: "r5"})
	if len(f.fou) != 0 || len(f.links["gre0"].addrs) != 0 || len(f.links["tunl0"].addrs) != 0 {
		t.Errorf("after rollback to 0:\n%s", f.dump())
	}
	// Destroy after an apply: the same.
	one := 1
	mustHandle(t, e, protocol.Request{Op: protocol.OpRollback, To: &one, RunID: "r6"})
	if f.dump() != good {
		t.Errorf("rollback to 1:\n%s", f.dump())
	}
	preview := mustHandle(t, e, protocol.Request{Op: protocol.OpDestroy, DryRun: true})
	if !strings.Contains(shown(preview), "- fou port 6080  gue") || !strings.Contains(shown(preview), "- tunnel gre0 198.18.48.182/32  present") {
		t.Errorf("destroy:\n%s", shown(preview))
	}
	mustHandle(t, e, protocol.Request{Op: protocol.OpDestroy, RunID: "d1"})
	if len(f.fou) != 0 || len(f.links["gre0"].addrs) != 0 || f.links["gre0"].up {
		t.Errorf("after destroy:\n%s", f.dump())
	}
}

// A fou port that existed before tunplan (made by hand) is taken over: generation 0 records it, so
// rollback to 0 keeps it.
func TestHandMadeFouPortIsTakenOver(t *testing.T) {
	f := newFake()
	f.modules["fou"] = true
	e := newEngine(t, f)
	if err := f.FouAdd(toFou(6080)); err != nil {
		t.Fatal(err)
	}
	r := mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: tunnelRealserver(), RunID: "r1"})
	if strings.Contains(shown(r), "fou") {
		t.Errorf("a matching listener was changed:\n%s", shown(r))
	}
	mustHandle(t, e, protocol.Request{Op: protocol.OpRollback, To: new(int), RunID: "r2"})
	if _, ok := f.fou[6080]; !ok {
		t.Errorf("rollback to 0 removed the hand-made listener")
	}
}

func toFou(port int) netlink.Fou {
	return netlink.Fou{Family: netlink.FAMILY_V4, Port: port, EncapType: netlink.FOU_ENCAP_GUE}
}
