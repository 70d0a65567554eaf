package lab

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
)

// Traffic is what the lab saw when the client sent requests to the VIP.
type Traffic struct {
	Answers []string // body of each answer, in order
	IPIP    []string // IPIP packets the router captured: "outer-src > outer-dst: inner-src > inner-dst"
	Stats   string   // the director's `ipvsadm -Ln --stats` for the service
	InPkts  string
	OutPkts string
}

var (
	ipipLine  = regexp.MustCompile(`IP (\d+\.\d+\.\d+\.\d+) > (\d+\.\d+\.\d+\.\d+): IP (\d+\.\d+\.\d+\.\d+)\.\d+ > (\d+\.\d+\.\d+\.\d+)\.(\d+):`)
	statsLine = regexp.MustCompile(`(?m)^TCP\s+\S+\s+(\d+)\s+(\d+)\s+(\d+)`)
)

// Probe zeroes the director's counters, captures IP-in-IP on the router's LAN bridge (into
// RunDir()/ipip.pcap), and sends n requests from the client to the VIP.
func Probe(n int) (Traffic, error) {
	var t Traffic
	pcap := filepath.Join(RunDir(), "ipip.pcap")
	steps := []struct{ host, script string }{
		{"director", "ipvsadm -Z"},
		{"router", "rm -f " + pcap + "; timeout 120 tcpdump -i lan0 -nn -U -Z root -w " + pcap + " 'ip proto 4' >/tmp/tcpdump.log 2>&1 & echo $! > /tmp/tcpdump.pid; " +
			"for i in $(seq 50); do grep -q listening /tmp/tcpdump.log && exit 0; sleep 0.1; done; cat /tmp/tcpdump.log; exit 1"},
	}
	for _, s := range steps {
		if out, err := Sh(s.host, s.script); err != nil {
			return t, fmt.Errorf("lab: probe: %s: %w: %s", s.host, err, out)
		}
	}
	for i := 0; i < n; i++ {
		out, err := Exec("client", "curl", "-s", "--max-time", "5", "http://"+VIP+"/")
		if err != nil {
			out = "(no answer: " + err.Error() + ")"
		}
		t.Answers = append(t.Answers, strings.TrimSpace(out))
	}
	capture, err := Sh("router", "sleep 0.5; pid=$(cat /tmp/tcpdump.pid); kill $pid; while kill -0 $pid 2>/dev/null; do sleep 0.1; done; tcpdump -nn -r "+pcap)
	if err != nil {
		return t, fmt.Errorf("lab: probe: router: read capture: %w: %s", err, capture)
	}
	// The kernel folds its per-CPU IPVS counters into what ipvsadm shows every 2 s: wait for that.
	stats, err := Sh("director", StatsScript)
	if err != nil {
		return t, fmt.Errorf("lab: probe: director: ipvsadm: %w: %s", err, stats)
	}
	t.Read(capture, stats)
	return t, nil
}

// StatsScript prints the director's counters of the VIP's service once the kernel has folded its
// per-CPU counters into them (every 2 s).
const StatsScript = "sleep 2.5; ipvsadm -Ln --stats -t " + VIP + ":80"

// Read fills in what the router captured (capture: `tcpdump -nn` text) and the director's
// counters (stats: `ipvsadm -Ln --stats` of the service).
func (t *Traffic) Read(capture, stats string) {
	for _, m := range ipipLine.FindAllStringSubmatch(capture, -1) {
		t.IPIP = append(t.IPIP, fmt.Sprintf("%s > %s: %s > %s:%s", m[1], m[2], m[3], m[4], m[5]))
	}
	t.Stats = stats
	t.InPkts, t.OutPkts = Counters(stats)
}

// Counters are the InPkts and OutPkts of the first TCP service of an `ipvsadm -Ln --stats`
// listing, "" when it has none.
func Counters(stats string) (inPkts, outPkts string) {
	if m := statsLine.FindStringSubmatch(stats); m != nil {
		return m[2], m[3]
	}
	return "", ""
}

// Problems checks the three properties of LVS-TUN and says which ones failed: both realservers
// answer in turn (rr), the router sees the requests IPIP-encapsulated from the director to a
// realserver with the VIP inside, and the director sends nothing back (direct return).
func (t Traffic) Problems(director string, rips ...string) []string {
	var p []string
	seen := map[string]bool{}
	for i, a := range t.Answers {
		seen[a] = true
		if a != "rs1" && a != "rs2" {
			p = append(p, fmt.Sprintf("request %d answered %q", i, a))
		} else if i > 0 && a == t.Answers[i-1] {
			p = append(p, fmt.Sprintf("requests %d and %d both answered by %s: not alternating", i-1, i, a))
		}
	}
	if !seen["rs1"] || !seen["rs2"] {
		p = append(p, fmt.Sprintf("not both realservers answered: %v", t.Answers))
	}
	found := map[string]bool{}
	for _, l := range t.IPIP {
		for _, rip := range rips {
			if strings.HasPrefix(l, director+" > "+rip+": ") && strings.HasSuffix(l, " > "+VIP+":80") {
				found[rip] = true
			}
		}
	}
	for _, rip := range rips {
		if !found[rip] {
			p = append(p, fmt.Sprintf("router saw no IPIP packet %s > %s carrying a request to %s:80 (captured %d IPIP packets)", director, rip, VIP, len(t.IPIP)))
		}
	}
	if t.InPkts == "" || t.InPkts == "0" || t.OutPkts != "0" {
		p = append(p, fmt.Sprintf("want InPkts > 0 and OutPkts 0 at the director (direct return), got InPkts %q OutPkts %q:\n%s", t.InPkts, t.OutPkts, t.Stats))
	}
	return p
}

// Summary is a short human report of the traffic.
func (t Traffic) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "client -> %s:80 answers: %s\n", VIP, strings.Join(t.Answers, " "))
	fmt.Fprintf(&b, "router captured %d IPIP packets, e.g.:\n", len(t.IPIP))
	for i, l := range t.IPIP {
		if i == 4 {
			break
		}
		fmt.Fprintf(&b, "  outer %s\n", strings.Replace(l, ": ", "   inner ", 1))
	}
	fmt.Fprintf(&b, "director IPVS counters: InPkts %s OutPkts %s\n", t.InPkts, t.OutPkts)
	return b.String()
}
