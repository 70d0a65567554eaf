package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tunplan/tunplan/testinfra/lab"
)

// udpEchoEnv, set to an address, makes this test binary a UDP echo responder listening there instead
// of running tests: what the realservers answer verify's UDP probes with. The lab has no socat, and
// busybox nc answers one peer only; the test binary is already built, and the realservers see it
// once it is copied into the run's directory.
const udpEchoEnv = "E2E_UDP_ECHO"

func init() {
	if addr := os.Getenv(udpEchoEnv); addr != "" {
		os.Exit(udpEcho(addr))
	}
}

// udpEcho answers every datagram to addr with the same bytes, from addr's socket (bound to the VIP,
// its replies come from the VIP; bound to 0.0.0.0, from the address the route back picks: the RIP).
func udpEcho(addr string) int {
	c, err := net.ListenPacket("udp4", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "udp echo:", err)
		return 1
	}
	fmt.Println("listening on", c.LocalAddr())
	buf := make([]byte, 2048)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			fmt.Fprintln(os.Stderr, "udp echo:", err)
			return 1
		}
		if _, err := c.WriteTo(buf[:n], from); err != nil {
			fmt.Fprintln(os.Stderr, "udp echo:", err)
		}
	}
}

const udpPort = "5353"

// udpEchoBin copies this test binary into the run's directory, which every lab host sees (their
// /tmp, where go test keeps it, is their own), and returns its path there.
func udpEchoBin(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(lab.RunDir(), "udpecho")
	in, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// startEcho starts the UDP echo responder on host, listening on addr, and waits until it listens.
func startEcho(t *testing.T, bin, host, addr string) {
	t.Helper()
	sh(t, host, udpEchoEnv+"="+addr+" setsid "+bin+" </dev/null >/tmp/udpecho.log 2>&1 & echo $! >/tmp/udpecho.pid\n"+
		"for i in $(seq 100); do [ -n \"$(ss -Hlun 'sport = :"+udpPort+"')\" ] && exit 0; sleep 0.1; done; cat /tmp/udpecho.log; exit 1")
}

// stopEcho stops host's responder, if it runs, and waits until nothing listens on the port.
func stopEcho(t *testing.T, host string) {
	t.Helper()
	sh(t, host, "if [ -e /tmp/udpecho.pid ]; then kill $(cat /tmp/udpecho.pid) 2>/dev/null; rm -f /tmp/udpecho.pid; fi\n"+
		"for i in $(seq 100); do [ -z \"$(ss -Hlun 'sport = :"+udpPort+"')\" ] && exit 0; sleep 0.1; done; ss -lunp; exit 1")
}

// udpPlan writes the example with a UDP service on the VIP's port 5353, on both realservers, whose
// probe sends send and expects expect.
func udpPlan(t *testing.T, send, expect string) string {
	t.Helper()
	src, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	s := string(src) + `
virtual_service "echo" {
  vip       = var.vip
  protocol  = "udp"
  port      = ` + udpPort + `
  scheduler = "rr"
  directors = ["lvs01"]
  realserver "shanghai" {}
  realserver "beijing" {}
  probe {
    send   = "` + send + `"
    expect = "` + expect + `"
  }
}
`
	p := filepath.Join(t.TempDir(), "udp.hcl")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// table is verify's table of one service from lvs01, up to the blank line after it.
func table(t *testing.T, out, service string) string {
	t.Helper()
	head := "# " + service + " from lvs01\n"
	i := strings.Index(out, head)
	if i < 0 {
		t.Fatalf("verify printed no table for %s:\n%s", service, out)
	}
	tbl, _, _ := strings.Cut(out[i:], "\n\n")
	return tbl + "\n"
}

// okUDPRow is an ok UDP destination's row: an RTT, no MSS.
var okUDPRow = regexp.MustCompile(`^  \S+ \(\S+\)\s+ok\s+\d+\.\d ms\s+-$`)

// TestVerifyUDP: a UDP service whose plan has a probe block is probed through the tunnel: with an
// echo responder on the VIP's port on both realservers, verify exits 0 with both UDP destinations
// ok; a probe that expects other bytes is a wrong reply on both; with beijing's responder stopped,
// verify exits 2 naming beijing refused (its ICMP port unreachable) and why, shanghai still ok; a
// responder bound to 0.0.0.0 answers from the RIP, a wrong reply that names it.
func TestVerifyUDP(t *testing.T) {
	reset(t)
	bin := udpEchoBin(t)
	plan := udpPlan(t, "tunplan-udp-probe: are you there?", "tunplan-udp-probe")
	mustTunplan(t, plan, 0, "apply", "--auto-approve")
	for _, h := range []string{"rs1", "rs2"} {
		startEcho(t, bin, h, vip+":"+udpPort)
		t.Cleanup(func() { stopEcho(t, h) })
	}
	udp := "udp/" + vip + ":" + udpPort
	shanghai, beijing := "shanghai ("+rip1+")", "beijing ("+rip2+")"

	out := mustTunplan(t, plan, 0, "verify")
	t.Logf("verify of the healthy lab:\n%s", out)
	tbl := table(t, out, udp)
	for _, dest := range []string{shanghai, beijing} {
		if r := row(t, tbl, dest); !okUDPRow.MatchString(r) {
			t.Errorf("%s is not ok with an RTT: %q", dest, r)
		}
		if r := row(t, table(t, out, "tcp/"+vip+":80"), dest); !okRow.MatchString(r) {
			t.Errorf("%s's TCP destination is not ok: %q", dest, r)
		}
	}
	if !strings.Contains(out, "Verify complete: 4 destinations answer through the tunnel.") {
		t.Errorf("verify output:\n%s", out)
	}

	t.Run("other expected bytes", func(t *testing.T) {
		out, code := tunplan(t, udpPlan(t, "tunplan-udp-probe: are you there?", "pong"), "verify")
		t.Logf("verify:\n%s", out)
		if code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
		tbl := table(t, out, udp)
		want := `wrong reply .* reply does not start with the expected bytes: got 74756e706c616e2d7564702d70726f62… \("tunplan-udp-prob"\), 33 bytes$`
		for _, dest := range []string{shanghai, beijing} {
			if r := row(t, tbl, dest); !regexp.MustCompile(want).MatchString(r) {
				t.Errorf("%s: %q does not match %s", dest, r, want)
			}
		}
	})

	t.Run("responder stopped on beijing", func(t *testing.T) {
		stopEcho(t, "rs2")
		defer startEcho(t, bin, "rs2", vip+":"+udpPort)
		out, code := tunplan(t, plan, "verify")
		t.Logf("verify:\n%s", out)
		if code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
		tbl := table(t, out, udp)
		bj := row(t, tbl, beijing)
		if f := strings.Fields(bj); len(f) < 3 || f[2] != "refused" {
			t.Errorf("beijing is not refused: %q", bj)
		}
		if cause := "nothing is bound on " + vip + ":" + udpPort + " (nor on any other address on port " + udpPort + ")"; !strings.HasSuffix(bj, "  "+cause) {
			t.Errorf("beijing's row does not give the cause %q: %q", cause, bj)
		}
		if r := row(t, tbl, shanghai); !okUDPRow.MatchString(r) {
			t.Errorf("shanghai is not ok: %q", r)
		}
		if !strings.Contains(out, "Verify failed: 1 of 4 probed destinations did not answer through the tunnel.") {
			t.Errorf("no failure summary:\n%s", out)
		}
		if js, code := tunplan(t, plan, "verify", "--json"); code != 2 || !strings.Contains(js, `"detail": "ICMP port unreachable from `) {
			t.Errorf("--json: exit %d, no ICMP port unreachable in the detail:\n%s", code, js)
		}
	})

	t.Run("responder bound to 0.0.0.0 on beijing", func(t *testing.T) {
		stopEcho(t, "rs2")
		startEcho(t, bin, "rs2", "0.0.0.0:"+udpPort)
		defer func() {
			stopEcho(t, "rs2")
			startEcho(t, bin, "rs2", vip+":"+udpPort)
		}()
		out, code := tunplan(t, plan, "verify")
		t.Logf("verify:\n%s", out)
		if code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
		tbl := table(t, out, udp)
		bj := row(t, tbl, beijing)
		if f := strings.Fields(bj); len(f) < 4 || f[2]+" "+f[3] != "wrong reply" || !strings.Contains(bj, "the reply came from "+rip2+":"+udpPort+", not from the VIP") {
			t.Errorf("beijing is not a wrong reply from its RIP: %q", bj)
		}
		if r := row(t, tbl, shanghai); !okUDPRow.MatchString(r) {
			t.Errorf("shanghai is not ok: %q", r)
		}
	})

	// Both responders back: ok again.
	if out, code := tunplan(t, plan, "verify"); code != 0 {
		t.Errorf("after the faults: verify exit %d\n%s", code, out)
	}
	mustTunplan(t, plan, 0, "diff")
}
