package lab

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

const scripts = "../scripts"

// TestBaselineManualSetup reproduces the write-up's manual set-up and checks the three properties
// of LVS-TUN on the real kernel: both realservers answer in turn, the router sees IPIP from the
// director to each realserver carrying the VIP, and the director forwards no replies.
func TestBaselineManualSetup(t *testing.T) {
	if err := Reset(); err != nil {
		t.Fatal(err)
	}
	if out, err := Baseline(scripts); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	traffic, err := Probe(6)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + traffic.Summary())
	for _, p := range traffic.Problems(DirectorIP, RS1IP, RS2IP) {
		t.Error(p)
	}
}

// TestWithoutRealserverSetupTrafficFails shows the probe fails on a real kernel: with the director
// set up but not the realservers (no VIP on tunl0, rp_filter on), no answer comes back.
func TestWithoutRealserverSetupTrafficFails(t *testing.T) {
	if err := Reset(); err != nil {
		t.Fatal(err)
	}
	if out, err := Sh("director", scripts+"/director.sh "+VIP+" "+RS1IP+" "+RS2IP); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	traffic, err := Probe(2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(traffic.Problems(DirectorIP, RS1IP, RS2IP), func(p string) bool {
		return strings.HasPrefix(p, "not both realservers answered")
	}) {
		t.Errorf("traffic passed although the realservers were not set up:\n%s", traffic.Summary())
	}
}

// TestProblemsCatchEachFailure breaks one property at a time of a good probe and expects exactly
// that property to be reported.
func TestProblemsCatchEachFailure(t *testing.T) {
	good := func() Traffic {
		return Traffic{
			Answers: []string{"rs1", "rs2", "rs1", "rs2"},
			IPIP: []string{
				DirectorIP + " > " + RS1IP + ": " + ClientIP + " > " + VIP + ":80",
				DirectorIP + " > " + RS2IP + ": " + ClientIP + " > " + VIP + ":80",
			},
			InPkts: "20", OutPkts: "0",
		}
	}
	if p := good().Problems(DirectorIP, RS1IP, RS2IP); len(p) != 0 {
		t.Fatalf("good traffic reported: %v", p)
	}
	for name, c := range map[string]struct {
		breakIt func(*Traffic)
		want    string
	}{
		"one realserver":    {func(t *Traffic) { t.Answers = []string{"rs1", "rs1"} }, "not alternating"},
		"no answer":         {func(t *Traffic) { t.Answers[2] = "" }, "answered"},
		"not from director": {func(t *Traffic) { t.IPIP[0] = strings.Replace(t.IPIP[0], DirectorIP, ClientIP, 1) }, "no IPIP packet " + DirectorIP + " > " + RS1IP},
		"wrong inner dst":   {func(t *Traffic) { t.IPIP[1] = strings.Replace(t.IPIP[1], VIP, RS2IP, 1) }, "no IPIP packet " + DirectorIP + " > " + RS2IP},
		"no capture":        {func(t *Traffic) { t.IPIP = nil }, "captured 0 IPIP"},
		"replies via dir":   {func(t *Traffic) { t.OutPkts = "12" }, "direct return"},
		"no packets in":     {func(t *Traffic) { t.InPkts = "0" }, "direct return"},
	} {
		tr := good()
		c.breakIt(&tr)
		p := tr.Problems(DirectorIP, RS1IP, RS2IP)
		if !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, c.want) }) {
			t.Errorf("%s: want a problem with %q, got %q", name, c.want, p)
		}
	}
}

// TestHostsArePrivate checks that per-host state does not leak: /var/lib and /tmp are per host, and
// each host has its own name.
func TestHostsArePrivate(t *testing.T) {
	if _, err := Sh("rs1", "mkdir -p /var/lib/tunplan && echo rs1 > /var/lib/tunplan/probe && echo x > /tmp/probe"); err != nil {
		t.Fatal(err)
	}
	defer Sh("rs1", "rm -rf /var/lib/tunplan /tmp/probe")
	for _, h := range []string{"rs2", "director", Control} {
		if out, _ := Sh(h, "cat /var/lib/tunplan/probe /tmp/probe 2>/dev/null"); out != "" {
			t.Errorf("%s sees rs1's files: %q", h, out)
		}
	}
	for _, h := range Hosts() {
		if name, _ := Exec(h.Name, "hostname"); name != h.Name+"\n" {
			t.Errorf("%s's hostname is %q", h.Name, name)
		}
	}
	for _, f := range []string{SSHKey(), KnownHosts()} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("no %s: %v", f, err)
		}
	}
}

// TestSSHToEveryHost logs in to every host's sshd with the lab's key and known_hosts, strictly.
func TestSSHToEveryHost(t *testing.T) {
	for _, h := range Hosts() {
		t.Run(h.Name, func(t *testing.T) {
			t.Parallel()
			out, err := Exec(Control, "ssh", "-i", SSHKey(), "-o", "UserKnownHostsFile="+KnownHosts(),
				"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "root@"+h.Mgmt, "hostname")
			if err != nil || out != h.Name+"\n" {
				t.Errorf("ssh root@%s hostname: %v: %q", h.Mgmt, err, out)
			}
		})
	}
}

// TestResetRestoresPostBootState sets up the baseline and expects Reset to undo all of it.
func TestResetRestoresPostBootState(t *testing.T) {
	if err := Reset(); err != nil {
		t.Fatal(err)
	}
	if out, err := Baseline(scripts); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if _, err := Sh("rs1", "mkdir -p /var/lib/tunplan"); err != nil {
		t.Fatal(err)
	}
	if err := Reset(); err != nil {
		t.Fatal(err)
	}
	const state = "ls -d /var/lib/tunplan /sys/class/net/tunl0 /sys/module/ip_vs /sys/module/ipip 2>&1 | grep -vc 'No such'; " +
		"cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/conf/all/rp_filter"
	for _, c := range []struct{ host, want string }{
		{"director", "0\n0\n1\n"}, {"rs1", "0\n0\n1\n"}, {"rs2", "0\n0\n1\n"}, {"router", "0\n1\n0\n"},
	} {
		if out, _ := Sh(c.host, state); out != c.want {
			t.Errorf("%s after Reset: got %q, want %q (leftovers, ip_forward, rp_filter)", c.host, out, c.want)
		}
	}
}

// TestNetworks checks the lab's wiring: data traffic is routed through the router, nginx answers
// with the realserver's name, management carries SSH only and is unreachable from the data networks.
func TestNetworks(t *testing.T) {
	if err := Reset(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ host, script, want string }{
		{"client", "curl -s --max-time 5 http://" + RS1IP + "/", "rs1\n"},
		{"director", "curl -s --max-time 5 http://" + RS2IP + "/", "rs2\n"},
		{"rs1", "ip route get " + RS2IP + " | grep -o 'via [0-9.]*'", "via " + RouterRegion1 + "\n"},
		{"router", "ip route get " + RS1Mgmt + " from " + ClientIP + " iif lan0 2>&1 | grep -c denied", "1\n"},
		{"router", "ip route get " + ClientIP + " from " + ControlMgmt + " iif mgmt0 2>&1 | grep -c denied", "1\n"},
		{Control, "ip route get " + RS1IP + " 2>&1 | grep -c unreachable", "1\n"},
		{"rs1", "cat /proc/sys/net/ipv4/conf/all/rp_filter /proc/sys/net/ipv4/ip_forward", "1\n0\n"},
		{"router", "cat /proc/sys/net/ipv4/conf/all/rp_filter /proc/sys/net/ipv4/ip_forward", "0\n1\n"},
	} {
		if out, _ := Sh(c.host, c.script); out != c.want {
			t.Errorf("%s: %s: got %q, want %q", c.host, c.script, out, c.want)
		}
	}
}
