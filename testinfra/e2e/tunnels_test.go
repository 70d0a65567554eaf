package e2e

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tunplan/tunplan/testinfra/lab"
)

// The GUE and GRE services of examples/gue-gre, next to its IPIP one (lab.VIP).
const (
	vipGUE  = "198.18.48.185"
	vipGRE  = "198.18.48.186"
	guePort = 6080
)

var tunnelsExample = filepath.Join("..", "..", "examples", "gue-gre", "tunplan.hcl")

// TestTunnels applies examples/gue-gre, an IPIP, a GUE and a GRE service on the two realservers, on
// top of examples/two-region. The kernel state equals what ipvsadm --tun-type, ip fou add and ip
// addr add produce by hand. Requests from the client to each VIP are answered by both realservers
// in turn; the router sees them from the director to each realserver wrapped as their service asks
// (IPIP, UDP to port 6080 with a GUE header, GRE) and no other way; the director sends nothing back.
// Rolling that run back removes the fou listeners, gre0's VIPs and the two services, and IPIP still
// serves. Applied again, a GUE port changed by hand, a fou listener removed and a VIP taken off gre0
// are each reported by diff and fixed by apply; after a reboot of every host, what the boot runs
// brings it all back. With GUE's checksum, then remote checksum, the UDP
// packets carry a right checksum and are still answered. Rollback to before tunplan removes
// everything.
func TestTunnels(t *testing.T) {
	reset(t)
	if v := sh(t, "director", "ipvsadm --help 2>&1 | grep -c -- --tun-type || true"); strings.TrimSpace(v) == "0" {
		t.Fatalf("the lab's ipvsadm has no --tun-type:\n%s", sh(t, "director", "ipvsadm --version"))
	}

	// By hand, as an operator would: ipvsadm --tun-type, ip fou, ip addr.
	handMade(t)
	want := tunnelState(t)
	t.Logf("kernel state made by hand:\n%s", render(want))
	reset(t)

	mustTunplan(t, example, 0, "apply", "--auto-approve")
	out := mustTunplan(t, tunnelsExample, 0, "apply", "--auto-approve")
	t.Logf("apply:\n%s", out)
	for _, line := range []string{
		`\+ ipvs tcp/` + vipGUE + `:80 -> ` + rip1 + `:80\s+weight=1 fwd=tunnel tun=gue:6080`,
		`\+ ipvs tcp/` + vipGRE + `:80 -> ` + rip2 + `:80\s+weight=1 fwd=tunnel tun=gre`,
		`\+ fou port 6080\s+gue`,
		`\+ kmod fou\s+loaded`, `\+ kmod ip_gre\s+loaded`,
		`\+ tunnel gre0 ` + vipGRE + `/32\s+present`,
		`\+ tunnel tunl0 ` + vipGUE + `/32\s+present`,
		`\+ sysctl net.ipv4.conf.gre0.rp_filter\s+0`,
	} {
		if !regexp.MustCompile(`(?m)^\s+` + line + `$`).MatchString(out) {
			t.Errorf("apply does not say %q", line)
		}
	}
	got := tunnelState(t)
	for h := range want {
		if got[h] != want[h] {
			t.Errorf("%s: tunplan's kernel state differs from the one made by hand\n--- by hand\n%s\n--- tunplan\n%s", h, want[h], got[h])
		}
	}
	mustTunplan(t, tunnelsExample, 0, "diff")

	for _, c := range []struct{ vip, tunnel string }{{vip, "ipip"}, {vipGUE, "gue"}, {vipGRE, "gre"}} {
		tr := probeTunnel(t, c.vip, 6)
		t.Logf("%s (%s):\n%s", c.vip, c.tunnel, tr.summary())
		for _, p := range tr.problems(c.tunnel, false) {
			t.Errorf("%s (%s): %s", c.vip, c.tunnel, p)
		}
	}

	// Rolling the run back removes what GUE and GRE added; IPIP serves on.
	out = mustTunplan(t, tunnelsExample, 0, "rollback")
	t.Logf("rollback:\n%s", out)
	for _, rs := range []string{"rs1", "rs2"} {
		if fou := sh(t, rs, "ip fou show"); strings.TrimSpace(fou) != "" {
			t.Errorf("%s: fou listeners left after rollback: %q", rs, fou)
		}
		if a := sh(t, rs, "ip -4 -o addr show dev gre0"); strings.TrimSpace(a) != "" {
			t.Errorf("%s: addresses left on gre0 after rollback: %q", rs, a)
		}
	}
	if ipvs := sh(t, "director", "ipvsadm -Sn"); strings.Contains(ipvs, vipGUE) || strings.Contains(ipvs, vipGRE) || !strings.Contains(ipvs, vip) {
		t.Errorf("director's IPVS after rollback:\n%s", ipvs)
	}
	assertTunnelTraffic(t)

	// Drift, applied again.
	mustTunplan(t, tunnelsExample, 0, "apply", "--auto-approve")
	for _, c := range []struct {
		name, host, inject, report string
	}{
		{"GUE port changed by hand", "director",
			"ipvsadm -e -t " + vipGUE + ":80 -r " + rip1 + ":80 -i -w 1 --tun-type gue --tun-port 6081",
			`~ ipvs tcp/` + vipGUE + `:80 -> ` + rip1 + `:80\s+weight=1 fwd=tunnel tun=gue:6081 => weight=1 fwd=tunnel tun=gue:6080`},
		{"fou listener removed", "rs1", "ip fou del port 6080", `\+ fou port 6080\s+gue`},
		{"GRE VIP removed from gre0", "rs2", "ip addr del " + vipGRE + "/32 dev gre0", `\+ tunnel gre0 ` + vipGRE + `/32\s+present`},
	} {
		t.Run(c.name, func(t *testing.T) {
			sh(t, c.host, c.inject)
			out := mustTunplan(t, tunnelsExample, 2, "diff")
			t.Logf("diff:\n%s", out)
			if !regexp.MustCompile(`(?m)^\s+` + c.report + `$`).MatchString(out) {
				t.Errorf("diff does not say %q:\n%s", c.report, out)
			}
			if n := len(changeLine.FindAllString(out, -1)); n != 1 {
				t.Errorf("diff reports %d changes, want 1:\n%s", n, out)
			}
			mustTunplan(t, tunnelsExample, 0, "apply", "--auto-approve")
			mustTunplan(t, tunnelsExample, 0, "diff")
			if got := tunnelState(t); got[c.host] != want[c.host] {
				t.Errorf("%s after apply:\n%s\nwant\n%s", c.host, got[c.host], want[c.host])
			}
		})
	}
	tr := probeTunnel(t, vipGUE, 4)
	for _, p := range tr.problems("gue", false) {
		t.Errorf("GUE after the drift was fixed: %s", p)
	}

	// A reboot of every host (fou, ip_gre, ipip and IPVS unloaded): what the boot runs brings it
	// all back, and both tunnels serve.
	if err := lab.Reboot(true, "director", "rs1", "rs2"); err != nil {
		t.Fatal(err)
	}
	mustTunplan(t, tunnelsExample, 2, "diff")
	for _, h := range []string{"director", "rs1", "rs2"} {
		log, err := lab.Boot(h)
		if err != nil || !strings.Contains(log, "tunplan-helper restore: generation") {
			t.Fatalf("boot %s: %v\n%s", h, err, log)
		}
		if h == "rs1" {
			t.Logf("boot rs1:\n%s", log)
		}
	}
	if got := tunnelState(t); render(got) != render(want) {
		t.Errorf("after boot:\n%s\nwant\n%s", render(got), render(want))
	}
	mustTunplan(t, tunnelsExample, 0, "diff")
	for _, c := range []struct{ vip, tunnel string }{{vipGUE, "gue"}, {vipGRE, "gre"}} {
		for _, p := range probeTunnel(t, c.vip, 4).problems(c.tunnel, false) {
			t.Errorf("%s (%s) after boot: %s", c.vip, c.tunnel, p)
		}
	}

	// GUE checksums: an update of each GUE destination in place; the director then sends GUE with
	// a UDP checksum (checksum; remote_checksum, which also checksums the UDP header), right for
	// the bytes on the wire, and the realservers still answer. The director's kernel computes what
	// it leaves to offload, as a real NIC would (see txCsumEnv). (GRE checksums are refused by the
	// plan: gre0 drops checksummed GRE.)
	directorComputesChecksums(t)
	for _, c := range []struct{ attr, tun string }{{"checksum", "gue:6080,csum"}, {"remote_checksum", "gue:6080,remcsum"}} {
		plan := checksumPlan(t, c.attr)
		out = mustTunplan(t, plan, 2, "diff")
		line := `~ ipvs tcp/` + vipGUE + `:80 -> ` + rip1 + `:80\s+weight=1 fwd=tunnel tun=gue:6080\S* => weight=1 fwd=tunnel tun=` + c.tun
		if !regexp.MustCompile(`(?m)^\s+` + line + `$`).MatchString(out) {
			t.Errorf("%s: diff does not say %q:\n%s", c.attr, line, out)
		}
		if n := len(changeLine.FindAllString(out, -1)); n != 2 {
			t.Errorf("%s: diff shows %d changes, want the 2 GUE destinations:\n%s", c.attr, n, out)
		}
		mustTunplan(t, plan, 0, "apply", "--auto-approve")
		if ipvs := sh(t, "director", "ipvsadm -Sn"); !strings.Contains(ipvs, "--tun-type gue --tun-port 6080 --tun-"+map[string]string{"checksum": "csum", "remote_checksum": "remcsum"}[c.attr]+"\n") {
			t.Errorf("%s: ipvsadm -Sn:\n%s", c.attr, ipvs)
		}
		mustTunplan(t, plan, 0, "diff")
		tr := probeTunnel(t, vipGUE, 4)
		t.Logf("GUE with %s:\n%s", c.attr, tr.summary())
		for _, p := range tr.problems("gue", true) {
			t.Errorf("GUE with %s: %s", c.attr, p)
		}
	}

	// Back to before tunplan: no service, no listener, no VIP.
	mustTunplan(t, tunnelsExample, 0, "rollback", "--to", "0")
	for _, rs := range []string{"rs1", "rs2"} {
		if s := sh(t, rs, "ip fou show; ip -4 -o addr show dev gre0; ip -4 -o addr show dev tunl0"); strings.TrimSpace(s) != "" {
			t.Errorf("%s after rollback --to 0: %q", rs, s)
		}
	}
	if ipvs := sh(t, "director", "ipvsadm -Sn"); strings.TrimSpace(ipvs) != "" {
		t.Errorf("director's IPVS after rollback --to 0:\n%s", ipvs)
	}
}

// checksumPlan is examples/gue-gre with the gue block's attribute attr (checksum or
// remote_checksum) true.
func checksumPlan(t *testing.T, attr string) string {
	t.Helper()
	src, err := os.ReadFile(tunnelsExample)
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	// The example's lines, as laid out by tunplan fmt.
	line := map[string]string{"checksum": "    checksum        = false ", "remote_checksum": "    remote_checksum = false "}[attr]
	if strings.Count(s, line) != 1 {
		t.Fatalf("the example has no line %q:\n%s", line, s)
	}
	s = strings.Replace(s, line, strings.Replace(line, "false", "true", 1), 1)
	p := filepath.Join(t.TempDir(), attr+".hcl")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// handMade sets up the three services as an operator would with ipvsadm, ip fou and ip addr.
func handMade(t *testing.T) {
	t.Helper()
	dests := func(v, extra string) string {
		return fmt.Sprintf("ipvsadm -A -t %[1]s:80 -s rr\nipvsadm -a -t %[1]s:80 -r %[2]s:80 -i -w 1 %[4]s\nipvsadm -a -t %[1]s:80 -r %[3]s:80 -i -w 1 %[4]s\n", v, rip1, rip2, extra)
	}
	sh(t, "director", "set -e\nmodprobe ip_vs; modprobe ip_vs_rr; modprobe ipip\necho 1 > /proc/sys/net/ipv4/ip_forward\n"+
		"ip link set tunl0 up\nfor v in "+vip+" "+vipGUE+" "+vipGRE+"; do ip addr add $v/32 dev tunl0; done\n"+
		dests(vip, "")+dests(vipGUE, fmt.Sprintf("--tun-type gue --tun-port %d", guePort))+dests(vipGRE, "--tun-type gre"))
	for _, rs := range []string{"rs1", "rs2"} {
		sh(t, rs, fmt.Sprintf(`set -e
modprobe ipip; modprobe fou; modprobe ip_gre
ip fou add port %d gue
ip link set tunl0 up; ip link set gre0 up
ip addr add %s/32 dev tunl0; ip addr add %s/32 dev tunl0
ip addr add %s/32 dev gre0
for c in all tunl0 gre0; do echo 0 > /proc/sys/net/ipv4/conf/$c/rp_filter; done
echo 1 > /proc/sys/net/ipv4/conf/all/arp_ignore; echo 2 > /proc/sys/net/ipv4/conf/all/arp_announce`, guePort, vip, vipGUE, vipGRE))
	}
}

// tunnelState is what the issue compares, per host: the IPVS table with the tunnels (ipvsadm -Sn
// shows their type, port and checksum: --tun-type gue --tun-port 6080 --tun-nocsum), the VIP
// devices' addresses and state, the fou listeners and the sysctls.
func tunnelState(t *testing.T) map[string]string {
	t.Helper()
	rs := "ip fou show; for d in tunl0 gre0; do ip -4 -o addr show dev $d | awk '{print $2, $4}' | sort; ip -o link show $d | grep -o 'state [A-Z]*'; done; " +
		"for k in all/rp_filter tunl0/rp_filter gre0/rp_filter all/arp_ignore all/arp_announce; do echo $k=$(cat /proc/sys/net/ipv4/conf/$k); done"
	return map[string]string{
		"director": sh(t, "director", "ipvsadm -Sn | sort; ip -4 -o addr show dev tunl0 | awk '{print $4}' | sort; cat /proc/sys/net/ipv4/ip_forward"),
		"rs1":      sh(t, "rs1", rs),
		"rs2":      sh(t, "rs2", rs),
	}
}

func render(state map[string]string) string {
	var b strings.Builder
	for _, h := range []string{"director", "rs1", "rs2"} {
		fmt.Fprintf(&b, "# %s\n%s", h, state[h])
	}
	return b.String()
}

// tunnelTraffic is what the lab saw of requests from the client to one VIP.
type tunnelTraffic struct {
	vip     string
	answers []string
	packets []encap // every tunnelled packet the router saw from the director, of any kind
	stats   string
	inPkts  string
	outPkts string
}

// encap is one packet from the director to a realserver, with the request inside.
type encap struct {
	kind             string // "ipip", "gue", "gre"
	csum             bool   // GUE: a UDP checksum; GRE: the checksum flag
	csumOK           bool   // the checksum is right for the bytes on the wire
	src, dst         netip.Addr
	sport, dport     uint16 // the outer UDP ports (GUE)
	innerSrc, innerD netip.AddrPort
}

var (
	changeLine = regexp.MustCompile(`(?m)^  [-+~] `)
)

// probeTunnel zeroes the director's counters, captures on the router's LAN bridge every IPIP, GRE
// and GUE packet (the director's side of the router), and sends n requests from the client to v,
// as lab.Probe does for the main VIP.
func probeTunnel(t *testing.T, v string, n int) tunnelTraffic {
	t.Helper()
	tr := tunnelTraffic{vip: v}
	sh(t, "director", "ipvsadm -Z")
	tr.packets = captureTunnelled(t, func() {
		for i := 0; i < n; i++ {
			out, err := lab.Exec("client", "curl", "-s", "--max-time", "5", "http://"+v+"/")
			if err != nil {
				out = "(no answer: " + err.Error() + ")"
			}
			tr.answers = append(tr.answers, strings.TrimSpace(out))
		}
	})
	// The kernel folds its per-CPU IPVS counters into what ipvsadm shows every 2 s.
	tr.stats = sh(t, "director", "sleep 2.5; ipvsadm -Ln --stats -t "+v+":80")
	tr.inPkts, tr.outPkts = lab.Counters(tr.stats)
	return tr
}

// captureTunnelled captures on the router's LAN bridge (the director's side of the router) every
// IPIP, GRE and GUE packet while during runs, and returns them.
func captureTunnelled(t *testing.T, during func()) []encap {
	t.Helper()
	pcap := filepath.Join(lab.RunDir(), "tunnels.pcap")
	sh(t, "router", fmt.Sprintf("rm -f %[1]s; timeout 120 tcpdump -i lan0 -nn -U -Z root -w %[1]s 'ip proto 4 or ip proto 47 or udp port %[2]d' >/tmp/tcpdump.log 2>&1 & echo $! > /tmp/tcpdump.pid; "+
		"for i in $(seq 50); do grep -q listening /tmp/tcpdump.log && exit 0; sleep 0.1; done; cat /tmp/tcpdump.log; exit 1", pcap, guePort))
	during()
	sh(t, "router", "sleep 0.5; pid=$(cat /tmp/tcpdump.pid); kill $pid; while kill -0 $pid 2>/dev/null; do sleep 0.1; done")
	raw, err := os.ReadFile(pcap)
	if err != nil {
		t.Fatal(err)
	}
	packets, err := readTunnelled(raw)
	if err != nil {
		t.Fatal(err)
	}
	return packets
}

// problems checks LVS-TUN for a VIP whose service tunnels by kind: both realservers answer in turn,
// the router sees the requests to the VIP from the director to each realserver wrapped as kind
// (GUE: UDP to port 6080), with a checksum or without as csum says, never otherwise, and the
// director sends nothing back.
func (tr tunnelTraffic) problems(kind string, csum bool) []string {
	var p []string
	seen := map[string]bool{}
	for i, a := range tr.answers {
		seen[a] = true
		if a != "rs1" && a != "rs2" {
			p = append(p, fmt.Sprintf("request %d answered %q", i, a))
		} else if i > 0 && a == tr.answers[i-1] {
			p = append(p, fmt.Sprintf("requests %d and %d both answered by %s: not alternating", i-1, i, a))
		}
	}
	if !seen["rs1"] || !seen["rs2"] {
		p = append(p, fmt.Sprintf("not both realservers answered: %v", tr.answers))
	}
	found := map[string]int{}
	for _, e := range tr.packets {
		if e.innerD != netip.AddrPortFrom(netip.MustParseAddr(tr.vip), 80) {
			continue
		}
		if e.kind != kind {
			p = append(p, fmt.Sprintf("a request to %s went by %s, not %s: %s", tr.vip, e.kind, kind, e))
			continue
		}
		if kind == "gue" && e.dport != guePort {
			p = append(p, fmt.Sprintf("GUE to UDP port %d, not %d: %s", e.dport, guePort, e))
			continue
		}
		if kind != "ipip" && e.csum != csum {
			p = append(p, fmt.Sprintf("checksum %v, want %v: %s", e.csum, csum, e))
			continue
		}
		if e.csum && !e.csumOK {
			p = append(p, fmt.Sprintf("wrong checksum on the wire: %s", e))
			continue
		}
		if e.src.String() == director {
			found[e.dst.String()]++
		}
	}
	for _, rip := range []string{rip1, rip2} {
		if found[rip] == 0 {
			p = append(p, fmt.Sprintf("router saw no %s packet %s > %s carrying a request to %s:80 (captured %d tunnelled packets)", kind, director, rip, tr.vip, len(tr.packets)))
		}
	}
	if tr.inPkts == "" || tr.inPkts == "0" || tr.outPkts != "0" {
		p = append(p, fmt.Sprintf("want InPkts > 0 and OutPkts 0 at the director (direct return), got InPkts %q OutPkts %q:\n%s", tr.inPkts, tr.outPkts, tr.stats))
	}
	return p
}

func (e encap) String() string {
	s := fmt.Sprintf("%s %s > %s", e.kind, e.src, e.dst)
	if e.kind == "gue" {
		s = fmt.Sprintf("%s %s.%d > %s.%d", e.kind, e.src, e.sport, e.dst, e.dport)
	}
	switch {
	case e.csum && e.csumOK:
		s += " (checksum correct)"
	case e.csum:
		s += " (checksum WRONG)"
	}
	return s + fmt.Sprintf(" carrying %s > %s", e.innerSrc, e.innerD)
}

func (tr tunnelTraffic) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "client -> %s:80 answers: %s\n", tr.vip, strings.Join(tr.answers, " "))
	var mine []encap
	sports := map[uint16]bool{}
	for _, e := range tr.packets {
		if e.innerD.Addr().String() == tr.vip {
			mine = append(mine, e)
			sports[e.sport] = true
		}
	}
	fmt.Fprintf(&b, "router captured %d tunnelled packets carrying requests to it, e.g.:\n", len(mine))
	for i, e := range mine {
		if i == 4 {
			break
		}
		fmt.Fprintf(&b, "  %s\n", e)
	}
	if len(mine) > 0 && mine[0].kind == "gue" {
		fmt.Fprintf(&b, "GUE source ports: %d distinct\n", len(sports))
	}
	fmt.Fprintf(&b, "director IPVS counters: InPkts %s OutPkts %s\n", tr.inPkts, tr.outPkts)
	return b.String()
}

// readTunnelled reads a pcap of Ethernet frames and returns the IPv4 packets in IPIP (protocol 4),
// GRE (47, protocol IPv4) or GUE (UDP to guePort, a version-0 GUE header naming IPIP) that carry
// an IPv4 TCP segment.
func readTunnelled(b []byte) ([]encap, error) {
	if len(b) < 24 {
		return nil, fmt.Errorf("pcap: %d bytes", len(b))
	}
	var bo binary.ByteOrder = binary.LittleEndian
	switch binary.LittleEndian.Uint32(b) {
	case 0xa1b2c3d4:
	case 0xd4c3b2a1:
		bo = binary.BigEndian
	default:
		return nil, fmt.Errorf("pcap: magic %x", b[:4])
	}
	if lt := bo.Uint32(b[20:]); lt != 1 {
		return nil, fmt.Errorf("pcap: link type %d, want Ethernet", lt)
	}
	var out []encap
	for b = b[24:]; len(b) >= 16; {
		n := int(bo.Uint32(b[8:]))
		if 16+n > len(b) {
			break
		}
		frame := b[16 : 16+n]
		b = b[16+n:]
		if len(frame) < 14 || binary.BigEndian.Uint16(frame[12:]) != 0x0800 {
			continue
		}
		if e, ok := decap(frame[14:]); ok {
			out = append(out, e)
		}
	}
	return out, nil
}

// ipv4 splits an IPv4 packet into its addresses, protocol and payload.
func ipv4(p []byte) (src, dst netip.Addr, proto byte, payload []byte, ok bool) {
	if len(p) < 20 || p[0]>>4 != 4 {
		return src, dst, 0, nil, false
	}
	ihl := int(p[0]&0xf) * 4
	if ihl < 20 || len(p) < ihl {
		return src, dst, 0, nil, false
	}
	return netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20])), p[9], p[ihl:], true
}

func decap(p []byte) (encap, bool) {
	var e encap
	src, dst, proto, payload, ok := ipv4(p)
	if !ok {
		return e, false
	}
	e.src, e.dst = src, dst
	var inner []byte
	switch proto {
	case 4:
		e.kind, inner = "ipip", payload
	case 47: // GRE: flags and version, protocol, then checksum, key, sequence when flagged
		if len(payload) < 4 || binary.BigEndian.Uint16(payload[2:]) != 0x0800 {
			return e, false
		}
		flags, hl := binary.BigEndian.Uint16(payload), 4
		for _, bit := range []uint16{0x8000, 0x2000, 0x1000} {
			if flags&bit != 0 {
				hl += 4
			}
		}
		if len(payload) < hl {
			return e, false
		}
		e.kind, e.csum, inner = "gre", flags&0x8000 != 0, payload[hl:]
		e.csumOK = e.csum && onesSum(payload) == 0xffff
	case 17: // UDP, then GUE version 0: hlen (in words) of options, proto_ctype 4 (IPIP)
		if len(payload) < 12 {
			return e, false
		}
		e.sport, e.dport = binary.BigEndian.Uint16(payload), binary.BigEndian.Uint16(payload[2:])
		e.csum = binary.BigEndian.Uint16(payload[6:]) != 0
		pseudo := append(append(src.AsSlice(), dst.AsSlice()...), 0, 17, byte(len(payload)>>8), byte(len(payload)))
		e.csumOK = e.csum && onesSum(append(pseudo, payload...)) == 0xffff
		gue := payload[8:]
		hl := 4 + int(gue[0]&0x1f)*4
		if gue[0]>>6 != 0 || gue[1] != 4 || len(gue) < hl {
			return e, false
		}
		e.kind, inner = "gue", gue[hl:]
	default:
		return e, false
	}
	isrc, idst, iproto, seg, ok := ipv4(inner)
	if !ok || iproto != 6 || len(seg) < 4 {
		return e, false
	}
	e.innerSrc = netip.AddrPortFrom(isrc, binary.BigEndian.Uint16(seg))
	e.innerD = netip.AddrPortFrom(idst, binary.BigEndian.Uint16(seg[2:]))
	return e, true
}

// onesSum is the ones' complement sum of b in 16-bit words: 0xffff over data whose checksum is right.
func onesSum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}
