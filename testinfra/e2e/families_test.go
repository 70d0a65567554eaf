package e2e

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tunplan/tunplan/testinfra/lab"
)

var (
	ipv6Example   = filepath.Join("..", "..", "examples", "ipv6", "tunplan.hcl")
	fwmarkExample = filepath.Join("..", "..", "examples", "fwmark", "tunplan.hcl")
)

// The fwmark example's VIP, and a second client address for the persistence check.
const (
	vipMark = "198.18.48.190"
	client2 = "198.18.48.101"
)

// TestIPv6 applies examples/ipv6: the IPv4 service of two-region and the same service on an IPv6
// VIP. The kernel state equals what ipvsadm -6 and ip -6 addr … dev ip6tnl0 nodad produce by hand.
// Requests from the client over IPv6 are answered by both realservers in turn; the router sees each
// one from the director to each realserver in IPv6-in-IPv6 (next header 41), and the director sends
// nothing back; IPv4 still works alongside. The IPv6 VIP removed from a realserver's ip6tnl0 is
// reported by diff and put back by apply; a reboot of every host is undone by what their boot
// runs; rollback removes the IPv6 service and VIP.
func TestIPv6(t *testing.T) {
	reset(t)
	handMade6(t)
	want := state6(t)
	t.Logf("kernel state made by hand:\n%s", render(want))
	reset(t)

	out := mustTunplan(t, ipv6Example, 0, "apply", "--auto-approve")
	t.Logf("apply:\n%s", out)
	for _, line := range []string{
		`\+ ipvs tcp/\[` + lab.VIP6 + `\]:80 -> \[` + lab.RS1IP6 + `\]:80\s+weight=1 fwd=tunnel`,
		`\+ kmod ip6_tunnel\s+loaded`,
		`\+ tunnel ip6tnl0 ` + lab.VIP6 + `/128\s+present`,
	} {
		if !regexp.MustCompile(`(?m)^\s+` + line + `$`).MatchString(out) {
			t.Errorf("apply does not say %q", line)
		}
	}
	if got := state6(t); render(got) != render(want) {
		t.Errorf("tunplan's kernel state differs from the one made by hand\n--- by hand\n%s\n--- tunplan\n%s", render(want), render(got))
	}
	mustTunplan(t, ipv6Example, 0, "diff")
	assertTraffic6(t, 6)
	assertTunnelTraffic(t)

	// Drift: the VIP taken off a realserver's ip6tnl0.
	sh(t, "rs2", "ip -6 addr del "+lab.VIP6+"/128 dev ip6tnl0")
	out = mustTunplan(t, ipv6Example, 2, "diff")
	if line := `\+ tunnel ip6tnl0 ` + lab.VIP6 + `/128\s+present`; !regexp.MustCompile(`(?m)^\s+`+line+`$`).MatchString(out) || len(changeLine.FindAllString(out, -1)) != 1 {
		t.Errorf("diff does not say only %q:\n%s", line, out)
	}
	mustTunplan(t, ipv6Example, 0, "apply", "--auto-approve")
	mustTunplan(t, ipv6Example, 0, "diff")

	// A reboot of every host, ip6_tunnel unloaded: their boot brings ip6tnl0 and the VIPs back.
	rebootAll(t, ipv6Example)
	assertTraffic6(t, 4)

	mustTunplan(t, ipv6Example, 0, "rollback", "--to", "0")
	for _, h := range []string{"director", "rs1", "rs2"} {
		if a := sh(t, h, "ip -6 -o addr show dev ip6tnl0 scope global"); strings.TrimSpace(a) != "" {
			t.Errorf("%s: IPv6 VIP left after rollback: %q", h, a)
		}
	}
	if ipvs := sh(t, "director", "ipvsadm -Sn"); strings.TrimSpace(ipvs) != "" {
		t.Errorf("director's IPVS after rollback --to 0:\n%s", ipvs)
	}
}

// handMade6 sets up the IPv6 service as an operator would.
func handMade6(t *testing.T) {
	t.Helper()
	sh(t, "director", fmt.Sprintf(`set -e
modprobe ip_vs; modprobe ip_vs_rr; modprobe ip6_tunnel
ip link set ip6tnl0 up; ip -6 addr add %[1]s/128 dev ip6tnl0 nodad
ipvsadm -A -t [%[1]s]:80 -s rr
ipvsadm -a -t [%[1]s]:80 -r [%[2]s]:80 -i -w 1
ipvsadm -a -t [%[1]s]:80 -r [%[3]s]:80 -i -w 1`, lab.VIP6, lab.RS1IP6, lab.RS2IP6))
	for _, rs := range []string{"rs1", "rs2"} {
		sh(t, rs, "set -e; modprobe ip6_tunnel; ip link set ip6tnl0 up; ip -6 addr add "+lab.VIP6+"/128 dev ip6tnl0 nodad")
	}
}

// state6 is the IPv6 part of the hosts' kernel state: the director's IPVS table and every host's
// ip6tnl0 addresses and state.
func state6(t *testing.T) map[string]string {
	t.Helper()
	dev := "ip -6 -o addr show dev ip6tnl0 scope global | awk '{print $4}' | sort; ip -o link show ip6tnl0 | grep -o 'state [A-Z]*'"
	return map[string]string{
		"director": sh(t, "director", "ipvsadm -Sn | grep '\\[' | sort; "+dev),
		"rs1":      sh(t, "rs1", dev),
		"rs2":      sh(t, "rs2", dev),
	}
}

// assertTraffic6 sends n requests from the client to [VIP6]:80 while the router captures the
// IPv6-in-IPv6 packets on its LAN bridge, and checks LVS-TUN: both realservers answer in turn, the
// requests reach each realserver from the director in IPv6-in-IPv6, the director sends nothing
// back.
func assertTraffic6(t *testing.T, n int) {
	t.Helper()
	sh(t, "director", "ipvsadm -Z")
	sh(t, "router", "timeout 120 tcpdump -i lan0 -nn -l 'ip6 proto 41' >/tmp/tcpdump6.txt 2>/tmp/tcpdump6.log & echo $! > /tmp/tcpdump.pid; "+
		"for i in $(seq 50); do grep -q listening /tmp/tcpdump6.log && exit 0; sleep 0.1; done; cat /tmp/tcpdump6.log; exit 1")
	var answers []string
	for i := 0; i < n; i++ {
		out, err := lab.Exec("client", "curl", "-s", "-g", "--max-time", "5", "http://["+lab.VIP6+"]/")
		if err != nil {
			out = "(no answer: " + err.Error() + ")"
		}
		answers = append(answers, strings.TrimSpace(out))
	}
	capture := sh(t, "router", "sleep 0.5; pid=$(cat /tmp/tcpdump.pid); kill $pid; while kill -0 $pid 2>/dev/null; do sleep 0.1; done; cat /tmp/tcpdump6.txt")
	stats := sh(t, "director", "sleep 2.5; ipvsadm -Ln --stats -t ["+lab.VIP6+"]:80")
	t.Logf("client -> [%s]:80 answers: %s\nrouter captured %d IPv6-in-IPv6 packets, e.g.:\n%s\n%s", lab.VIP6, strings.Join(answers, " "),
		strings.Count(capture, "\n"), firstLines(capture, 2), stats)
	for i, a := range answers {
		if a != "rs1" && a != "rs2" {
			t.Errorf("request %d answered %q", i, a)
		} else if i > 0 && a == answers[i-1] {
			t.Errorf("requests %d and %d both answered by %s: not alternating", i-1, i, a)
		}
	}
	for _, rip := range []string{lab.RS1IP6, lab.RS2IP6} {
		// tcpdump -nn: "IP6 <director> > <rip>: IP6 <client>.<port> > <vip>.80: Flags [S] …"
		want := fmt.Sprintf("IP6 %s > %s: IP6 %s.", lab.DirectorIP6, rip, lab.ClientIP6)
		if !strings.Contains(capture, want) || !strings.Contains(capture, " > "+lab.VIP6+".80: ") {
			t.Errorf("the router saw no IPv6-in-IPv6 packet %s > %s carrying a request to [%s]:80", lab.DirectorIP6, rip, lab.VIP6)
		}
	}
	if in, out := lab.Counters(stats); in == "" || in == "0" || out != "0" {
		t.Errorf("want InPkts > 0 and OutPkts 0 at the director (direct return):\n%s", stats)
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// TestFwmark applies examples/fwmark: one firewall-mark service for ports 80 and 443 of a VIP,
// persistent. The director's table inet tunplan holds the rules nft itself would write, and its
// IPVS table the fwmark service. One client's requests to both ports land on one realserver, and a
// second client's on the other. A mark rule deleted by hand is reported by diff and put back by
// apply; a reboot of every host (nf_tables unloaded) is undone by their boot; rollback removes the
// table and the service.
func TestFwmark(t *testing.T) {
	reset(t)
	sh(t, "client", "ip addr add "+client2+"/24 dev eth0")
	t.Cleanup(func() { lab.Sh("client", "ip addr del "+client2+"/24 dev eth0") })

	out := mustTunplan(t, fwmarkExample, 0, "apply", "--auto-approve")
	t.Logf("apply:\n%s", out)
	for _, line := range []string{
		`\+ ipvs fwmark/1\s+scheduler=rr persistence=300`,
		`\+ ipvs fwmark/1 -> ` + rip1 + `:0\s+weight=1 fwd=tunnel`,
		`\+ nft tcp/` + vipMark + `:80\s+mark 1`,
		`\+ nft tcp/` + vipMark + `:443\s+mark 1`,
		`\+ kmod nf_tables\s+loaded`,
	} {
		if !regexp.MustCompile(`(?m)^\s+` + line + `$`).MatchString(out) {
			t.Errorf("apply does not say %q", line)
		}
	}
	table := sh(t, "director", "nft list table inet tunplan")
	t.Logf("nft list table inet tunplan:\n%s", table)
	for _, port := range []string{"80", "443"} {
		if rule := "ip daddr " + vipMark + " tcp dport " + port + " meta mark set 0x00000001"; !strings.Contains(table, rule) {
			t.Errorf("the director's table lacks %q", rule)
		}
	}
	ipvs := sh(t, "director", "ipvsadm -Sn")
	for _, want := range []string{"-A -f 1 -s rr -p 300", "-a -f 1 -r " + rip1 + ":0 -i -w 1", "-a -f 1 -r " + rip2 + ":0 -i -w 1"} {
		if !strings.Contains(ipvs, want) {
			t.Errorf("ipvsadm -Sn lacks %q:\n%s", want, ipvs)
		}
	}
	mustTunplan(t, fwmarkExample, 0, "diff")
	assertSticky(t, 3)

	// Drift: the rule of port 443 deleted by hand.
	handle := sh(t, "director", "nft -a list chain inet tunplan prerouting | grep 'dport 443' | grep -o 'handle [0-9]*' | cut -d' ' -f2")
	sh(t, "director", "nft delete rule inet tunplan prerouting handle "+strings.TrimSpace(handle))
	out = mustTunplan(t, fwmarkExample, 2, "diff")
	if line := `\+ nft tcp/` + vipMark + `:443\s+mark 1`; !regexp.MustCompile(`(?m)^\s+`+line+`$`).MatchString(out) || len(changeLine.FindAllString(out, -1)) != 1 {
		t.Errorf("diff does not say only %q:\n%s", line, out)
	}
	mustTunplan(t, fwmarkExample, 0, "apply", "--auto-approve")
	mustTunplan(t, fwmarkExample, 0, "diff")

	// A reboot of every host, IPVS and nf_tables unloaded: the director's boot brings the rules
	// back.
	rebootAll(t, fwmarkExample)
	assertSticky(t, 1)

	out = mustTunplan(t, fwmarkExample, 0, "rollback", "--to", "0")
	t.Logf("rollback --to 0:\n%s", out)
	if tables := sh(t, "director", "nft list tables"); strings.Contains(tables, "tunplan") {
		t.Errorf("nftables table left after rollback --to 0:\n%s", tables)
	}
	if ipvs := sh(t, "director", "ipvsadm -Sn"); strings.TrimSpace(ipvs) != "" {
		t.Errorf("director's IPVS after rollback --to 0:\n%s", ipvs)
	}
}

// rebootAll reboots the director and the realservers with every tunnel, IPVS and nftables module
// unloaded (the VM's kernel is theirs in common): plan's diff then finds drift, and after what
// each host's boot runs, none.
func rebootAll(t *testing.T, plan string) {
	t.Helper()
	hosts := []string{"director", "rs1", "rs2"}
	if err := lab.Reboot(true, hosts...); err != nil {
		t.Fatal(err)
	}
	mustTunplan(t, plan, 2, "diff")
	for _, h := range hosts {
		if log, err := lab.Boot(h); err != nil {
			t.Fatalf("boot %s: %v\n%s", h, err, log)
		}
	}
	mustTunplan(t, plan, 0, "diff")
}

// assertSticky sends n requests to each of ports 80 and 443 of the fwmark VIP from each of the
// client's two addresses: every answer to one address comes from one realserver, and the two
// addresses are answered by different realservers.
func assertSticky(t *testing.T, n int) {
	t.Helper()
	by := map[string]string{}
	for _, src := range []string{lab.ClientIP, client2} {
		var answers []string
		for i := 0; i < n; i++ {
			for _, port := range []string{"80", "443"} {
				out, err := lab.Exec("client", "curl", "-s", "--max-time", "5", "--interface", src, "http://"+vipMark+":"+port+"/")
				if err != nil {
					out = "(no answer: " + err.Error() + ")"
				}
				answers = append(answers, port+":"+strings.TrimSpace(out))
			}
		}
		t.Logf("client %s -> %s: %s", src, vipMark, strings.Join(answers, " "))
		for _, a := range answers {
			_, rs, _ := strings.Cut(a, ":")
			if rs != "rs1" && rs != "rs2" {
				t.Errorf("client %s: answer %q", src, a)
			} else if by[src] == "" {
				by[src] = rs
			} else if rs != by[src] {
				t.Errorf("client %s answered by both realservers: %v", src, answers)
				break
			}
		}
	}
	if by[lab.ClientIP] == by[client2] {
		t.Errorf("both clients land on %s: not spread", by[client2])
	}
}
