package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// nginxConf is the configuration the lab starts a realserver's nginx with (lab's hostSetup writes
// it to /lab/<host>/nginx.conf): `listen 0.0.0.0:80`, `[::]:80` and `0.0.0.0:443`, answering the host's name.
func nginxConf(host string) string { return "/lab/" + host + "/nginx.conf" }

// restartNginx stops a realserver's nginx (if it runs) and, unless conf is "", starts it again
// with conf.
func restartNginx(t *testing.T, host, conf string) {
	t.Helper()
	script := `if [ -e /run/nginx.pid ]; then /usr/sbin/nginx -e /var/log/nginx/error.log -c ` + nginxConf(host) + ` -s stop; fi
for i in $(seq 100); do [ -e /run/nginx.pid ] || [ -n "$(ss -Hltn 'sport = :80')" ] || break; sleep 0.1; done
[ -z "$(ss -Hltn 'sport = :80')" ] || { echo "nginx still listens"; ss -ltnp; exit 1; }`
	if conf != "" {
		script += "\n/usr/sbin/nginx -e /var/log/nginx/error.log -c " + conf
	}
	sh(t, host, script)
}

// nginxOnRIP rebinds a realserver's nginx on port 80 to its RIP only (listen RIP:80, and no more
// [::]:80), as a hand-edited configuration would, and returns the undo.
func nginxOnRIP(t *testing.T, host, rip string) func() {
	t.Helper()
	conf := filepath.Join("/tmp", "nginx-rip.conf") // the host's private /tmp
	sh(t, host, "sed 's/listen 0.0.0.0:80;/listen "+rip+":80;/; /listen \\[::\\]:80;/d' "+nginxConf(host)+" > "+conf+" && grep -q 'listen "+rip+":80;' "+conf)
	restartNginx(t, host, conf)
	return func() { restartNginx(t, host, nginxConf(host)) }
}

// row is the line of verify's table for a destination ("beijing (198.18.10.182)").
func row(t *testing.T, out, dest string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "  "+dest+"  ") {
			return l
		}
	}
	t.Fatalf("verify printed no row for %s:\n%s", dest, out)
	return ""
}

// okRow is an ok destination's row: an RTT and an MSS.
var okRow = regexp.MustCompile(`^  \S+ \(\S+\)\s+ok\s+\d+\.\d ms\s+\d{3,5}$`)

// noHalfOpen checks, after a short wait, that nothing is left half-open by the probes: no
// connection in SYN-RECV on either realserver, none in SYN-SENT on the director.
func noHalfOpen(t *testing.T) {
	t.Helper()
	time.Sleep(time.Second)
	for host, state := range map[string]string{"rs1": "syn-recv", "rs2": "syn-recv", "director": "syn-sent"} {
		if out := sh(t, host, "ss -Htan state "+state); strings.TrimSpace(out) != "" {
			t.Errorf("%s: left in %s:\n%s", host, state, out)
		}
	}
}

// TestVerify: after apply of the two-region example, verify finds both destinations ok through the
// tunnel; each fault the issue lists, injected by hand on beijing (rs2), makes verify exit 2 and
// name beijing with the exact cause while shanghai stays ok, and nothing is left half-open.
func TestVerify(t *testing.T) {
	reset(t)
	mustTunplan(t, example, 0, "apply", "--auto-approve")
	out := mustTunplan(t, example, 0, "verify")
	t.Logf("verify of the healthy lab:\n%s", out)
	for _, dest := range []string{"shanghai (" + rip1 + ")", "beijing (" + rip2 + ")"} {
		if r := row(t, out, dest); !okRow.MatchString(r) {
			t.Errorf("%s is not ok with an RTT and an MSS: %q", dest, r)
		}
	}
	if !strings.Contains(out, "Verify complete: 2 destinations answer through the tunnel.") {
		t.Errorf("verify output:\n%s", out)
	}
	noHalfOpen(t)

	// Each fault is injected on rs2 and returns its undo.
	faults := []struct {
		name           string
		inject         func(t *testing.T) func()
		outcome, cause string
	}{
		{"nginx rebound to the RIP only", func(t *testing.T) func() { return nginxOnRIP(t, "rs2", rip2) },
			"refused", "nothing listens on " + vip + ":80 (nginx listens on " + rip2 + ":80 only)"},
		{"nginx stopped", func(t *testing.T) func() {
			restartNginx(t, "rs2", "")
			return func() { restartNginx(t, "rs2", nginxConf("rs2")) }
		}, "refused", "nothing listens on " + vip + ":80 (nor on any other address on port 80)"},
		{"rp_filter=1 on all", byHand("echo 1 > /proc/sys/net/ipv4/conf/all/rp_filter", "echo 0 > /proc/sys/net/ipv4/conf/all/rp_filter"),
			"no answer", "rp_filter for tunl0 is 1 (net.ipv4.conf.all.rp_filter=1): the decapsulated request is dropped"},
		{"VIP removed from tunl0", byHand("ip addr del "+vip+"/32 dev tunl0", "ip addr add "+vip+"/32 brd "+vip+" dev tunl0"),
			"no answer", vip + " is not on tunl0: the decapsulated request is for an address this host does not have, and is dropped"},
		{"tunl0 down", byHand("ip link set tunl0 down", "ip link set tunl0 up"),
			"no answer", "tunl0 is down: the director's IPIP packets are not decapsulated (ip link set tunl0 up)"},
		{"return route blackholed", byHand("ip route add blackhole "+director+"/32", "ip route del blackhole "+director+"/32"),
			"no answer", "the route back to the director (" + director + ") is a blackhole route: the replies are dropped"},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			defer f.inject(t)()
			out, code := tunplan(t, example, "verify")
			t.Logf("verify:\n%s", out)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			bj := row(t, out, "beijing ("+rip2+")")
			if fields := strings.Fields(bj); len(fields) < 3 || !strings.HasPrefix(strings.Join(fields[2:], " "), f.outcome+" ") {
				t.Errorf("beijing's outcome is not %q: %q", f.outcome, bj)
			}
			if !strings.HasSuffix(bj, "  "+f.cause) {
				t.Errorf("beijing's row does not end with the cause %q:\n%q", f.cause, bj)
			}
			if r := row(t, out, "shanghai ("+rip1+")"); !okRow.MatchString(r) {
				t.Errorf("shanghai is not ok: %q", r)
			}
			if !strings.Contains(out, "Verify failed: 1 of 2 probed destinations did not answer through the tunnel.") {
				t.Errorf("no failure summary:\n%s", out)
			}
			noHalfOpen(t)
		})
		// Undone: both ok again.
		if out, code := tunplan(t, example, "verify"); code != 0 {
			t.Fatalf("after undoing %q: verify exit %d\n%s", f.name, code, out)
		}
	}
	mustTunplan(t, example, 0, "diff")
}

// TestVerifyAtomicApplyRollsBack: a plan that adds beijing, whose nginx listens on its RIP only,
// applied with --verify --atomic over the plan without it, is rolled back after the verify fails:
// every host's kernel is as it was before the run (shanghai, which the run did not change, too).
func TestVerifyAtomicApplyRollsBack(t *testing.T) {
	reset(t)
	one := withoutBeijing(t)
	mustTunplan(t, one, 0, "apply", "--auto-approve")
	before := kernelState(t)
	defer nginxOnRIP(t, "rs2", rip2)()

	out := mustTunplan(t, example, 1, "apply", "--auto-approve", "--verify", "--atomic")
	t.Logf("apply --verify --atomic:\n%s", out)
	for _, want := range []string{
		"Apply complete! 2 hosts changed.",
		"nothing listens on " + vip + ":80 (nginx listens on " + rip2 + ":80 only)",
		"Verify failed (--atomic): rolled back 2 hosts changed in this run: beijing, lvs01.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if after := kernelState(t); !equalStates(after, before) {
		t.Errorf("the kernel differs from before the run:\n--- before\n%v\n--- after\n%v", before, after)
	}
	mustTunplan(t, one, 0, "diff")
	noHalfOpen(t)
}

// withoutBeijing writes the example without the beijing realserver (its host and its place in the
// service).
func withoutBeijing(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	for _, re := range []string{`(?s)\n# Realserver in the Beijing region.*?\n}\n`, `(?s)\n  realserver "beijing" \{.*?\n  \}`} {
		r := regexp.MustCompile(re)
		if !r.MatchString(s) {
			t.Fatalf("the example has no %s", re)
		}
		s = r.ReplaceAllString(s, "")
	}
	if strings.Contains(s, `"beijing"`) {
		t.Fatalf("beijing is still in the plan:\n%s", s)
	}
	p := filepath.Join(t.TempDir(), "one.hcl")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
