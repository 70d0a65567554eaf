package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tunplan/tunplan/modules/protocol"
	"github.com/tunplan/tunplan/testinfra/lab"
)

// A realserver drained with --wait stops getting new connections at once, and drain returns when
// the client closes the last one it had; the drain holds through diff (no drift) and apply, status
// shows it with the kernel's counters, and undrain gives the weight back.
func TestDrainWaitsForConnections(t *testing.T) {
	reset(t)
	textfile := filepath.Dir(protocol.DefaultMetrics) // as prometheus-node-exporter makes it
	sh(t, "director", "mkdir -p "+textfile)
	t.Cleanup(func() { lab.Sh("director", "rm -rf "+textfile) })
	mustTunplan(t, healthExample, 0, "apply", "--auto-approve")
	stopWatcherAfter(t)
	waitHealthy(t)

	// Two connections from the client, held open without a request: rr gives one to each realserver.
	hold := "setsid bash -c 'exec 3<>/dev/tcp/" + vip + "/80; sleep 120' >/dev/null 2>&1 </dev/null & echo $! >>/tmp/hold.pids"
	sh(t, "client", "rm -f /tmp/hold.pids; "+hold+"; sleep 0.3; "+hold)
	t.Cleanup(func() { sh(t, "client", "kill $(cat /tmp/hold.pids) 2>/dev/null; true") })
	var st protocol.Status
	// The connection counts are the kernel's at once; its totals (connections, packets, bytes) are
	// gathered from each CPU by IPVS's estimator, every 2 s: wait for both.
	waitUntil(t, 10*time.Second, "IPVS counts both connections active, and its totals count them", func() bool {
		out, _ := tunplan(t, healthExample, "status", "--json")
		var doc struct {
			Directors []struct{ Status *protocol.Status }
		}
		if json.Unmarshal([]byte(out), &doc) != nil || len(doc.Directors) != 1 || doc.Directors[0].Status == nil {
			return false
		}
		st = *doc.Directors[0].Status
		active, counted := 0, 0
		for _, d := range st.Services[0].Destinations {
			active += int(d.ActiveConns)
			if d.Conns > 0 {
				counted++
			}
		}
		return active == 2 && counted == 2
	})
	for _, d := range st.Services[0].Destinations {
		if d.ActiveConns != 1 || d.Conns < 1 || d.InPackets < 2 || d.InBytes < 100 || d.OutPackets != 0 {
			t.Errorf("the kernel's counters of %s: %+v (want one active connection, its SYN and ACK in, nothing out in TUN mode)", d.Address, d.Counters)
		}
	}
	// The watcher's Prometheus text file has them too, within its 15 s.
	waitUntil(t, 20*time.Second, "the text file counts shanghai's active connection", func() bool {
		out, _ := lab.Sh("director", "cat "+protocol.DefaultMetrics)
		return strings.Contains(out, `tunplan_destination_active_connections{service="tcp/`+vip+`:80",destination="`+rip1+`:80"} 1`)
	})
	if out := mustTunplan(t, healthExample, 0, "status"); !strings.Contains(out, "watcher running (pid ") || !strings.Contains(out, "shanghai") || strings.Count(out, "  up: ok (") != 2 {
		t.Errorf("status:\n%s", out)
	}

	type result struct {
		out  string
		code int
		at   time.Time
	}
	done := make(chan result, 1)
	go func() {
		out, code := tunplan(t, healthExample, "drain", "shanghai", "--wait", "--timeout", "60s")
		done <- result{out, code, time.Now()}
	}()
	waitWeight(t, web, rip1, "0", 20*time.Second)
	time.Sleep(3 * time.Second) // drain is waiting for shanghai's connection
	select {
	case r := <-done:
		t.Fatalf("drain returned with a connection open: exit %d\n%s", r.code, r.out)
	default:
	}
	closing := time.Now()
	sh(t, "client", "kill $(cat /tmp/hold.pids)")
	r := <-done
	took := r.at.Sub(closing)
	t.Logf("drain --wait returned %v after the client closed shanghai's last connection", took.Round(10*time.Millisecond))
	if r.code != 0 || !strings.Contains(r.out, "Waiting for 1 active connection to shanghai") || !strings.Contains(r.out, "No active connection to shanghai is left.") || took > 5*time.Second {
		t.Errorf("drain --wait: exit %d after %v\n%s", r.code, took, r.out)
	}

	// Held, not drift: diff exits 0 and names the drain; apply leaves it; status shows it.
	if out := mustTunplan(t, healthExample, 0, "diff"); !strings.Contains(out, "tcp/"+vip+":80 -> "+rip1+":80  at weight 0 (plan weight 1), drained by ") {
		t.Errorf("diff with shanghai drained:\n%s", out)
	}
	mustTunplan(t, healthExample, 0, "apply", "--auto-approve")
	if w := weight(t, rip1); w != "0" {
		t.Errorf("apply gave the drained shanghai weight %s", w)
	}
	if out := mustTunplan(t, healthExample, 0, "status"); !strings.Contains(out, "drained by ") {
		t.Errorf("status with shanghai drained:\n%s", out)
	}
	if out := mustTunplan(t, healthExample, 0, "undrain", "shanghai"); !strings.Contains(out, "shanghai undrained on 1 director.") || weight(t, rip1) != "1" {
		t.Errorf("undrain: weight %s\n%s", weight(t, rip1), out)
	}
	if out := mustTunplan(t, healthExample, 0, "diff"); strings.Contains(out, "held at weight 0") {
		t.Errorf("diff after undrain:\n%s", out)
	}
}
