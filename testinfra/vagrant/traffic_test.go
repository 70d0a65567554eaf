package vagrant

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tunplan/tunplan/testinfra/lab"
)

// requests is how many requests the client sends to the VIP per probe.
const requests = 6

// The router's capture: IPIP on its LAN interface (the one holding 198.18.48.254).
const (
	startCapture = `dev=$(ip -o -4 addr show to ` + lab.RouterLAN + `/32 | awk '{print $2}')
rm -f /tmp/ipip.pcap /tmp/tcpdump.log
timeout 120 tcpdump -i "$dev" -nn -U -Z root -w /tmp/ipip.pcap 'ip proto 4' </dev/null >/tmp/tcpdump.log 2>&1 &
echo $! >/tmp/tcpdump.pid
for i in $(seq 50); do grep -q listening /tmp/tcpdump.log && exit 0; sleep 0.1; done
cat /tmp/tcpdump.log; exit 1`
	stopCapture = `sleep 0.5; pid=$(cat /tmp/tcpdump.pid); kill $pid; while kill -0 $pid 2>/dev/null; do sleep 0.1; done
tcpdump -nn -r /tmp/ipip.pcap`
)

// ssh runs a shell script on a host as root over the management network, with tunplan's key and
// the hosts' real host keys.
func (l *vagrantLab) ssh(host, script string) (string, error) {
	out, err := inNetns("ssh", "-i", l.key, "-o", "UserKnownHostsFile="+l.known, "-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "root@"+mgmt[host], script).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", host, err, out)
	}
	return string(out), nil
}

// writeKnownHosts writes the hosts' ed25519 host keys, as ssh-keyscan reads them over the
// management network, into the test's known_hosts.
func (l *vagrantLab) writeKnownHosts() {
	var addrs []string
	for _, a := range mgmt {
		addrs = append(addrs, a)
	}
	out := l.run(inNetns("ssh-keyscan", append([]string{"-T", "10", "-t", "ed25519"}, addrs...)...))
	for _, a := range addrs {
		if !strings.Contains(out, a+" ssh-ed25519 ") {
			l.t.Fatalf("ssh-keyscan found no ed25519 host key at %s:\n%s", a, out)
		}
	}
	if err := os.WriteFile(l.known, []byte(out), 0o600); err != nil {
		l.t.Fatal(err)
	}
}

// bootIDs is each host's kernel boot id.
func (l *vagrantLab) bootIDs(hosts []string) map[string]string {
	ids := map[string]string{}
	for _, h := range hosts {
		out, err := l.ssh(h, "cat /proc/sys/kernel/random/boot_id")
		if err != nil {
			l.t.Fatal(err)
		}
		ids[h] = strings.TrimSpace(out)
	}
	return ids
}

// probe zeroes the director's counters, captures IPIP on the router and sends requests from the
// client to the VIP: what the lab saw, for lab.Traffic.Problems.
func (l *vagrantLab) probe() (lab.Traffic, error) {
	var t lab.Traffic
	if _, err := l.ssh("director", "ipvsadm -Z"); err != nil {
		return t, err
	}
	if _, err := l.ssh("router", startCapture); err != nil {
		return t, err
	}
	answers, err := l.ssh("client", fmt.Sprintf(
		`for i in $(seq %d); do curl -s --max-time 5 http://%s/ || echo no-answer; done`, requests, lab.VIP))
	if err != nil {
		return t, err
	}
	t.Answers = strings.Fields(answers)
	capture, err := l.ssh("router", stopCapture)
	if err != nil {
		return t, err
	}
	stats, err := l.ssh("director", lab.StatsScript)
	if err != nil {
		return t, err
	}
	t.Read(capture, stats)
	return t, nil
}

// checkTraffic probes until LVS-TUN's three properties hold (both realservers answer in turn,
// the router sees IPIP from the director to each RIP, the director's OutPkts stay 0), for up to
// wait, and fails the test with what the last probe saw otherwise.
func (l *vagrantLab) checkTraffic(when string, wait time.Duration) {
	l.t.Helper()
	deadline := time.Now().Add(wait)
	for {
		t, err := l.probe()
		problems := t.Problems(lab.DirectorIP, lab.RS1IP, lab.RS2IP)
		if err == nil && len(problems) == 0 {
			l.t.Logf("traffic %s:\n%s", when, t.Summary())
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("traffic %s: %v\n%s\n%s", when, err, strings.Join(problems, "\n"), t.Summary())
		}
		time.Sleep(5 * time.Second)
	}
}
