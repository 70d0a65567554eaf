package cli

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/protocol"
)

var (
	webKey   = protocol.Key{Protocol: "tcp", Address: netip.MustParseAddr("198.18.48.180"), Port: 80}
	shanghai = netip.MustParseAddr("198.18.1.183")
	beijing  = netip.MustParseAddr("198.18.10.182")
	since    = time.Date(2026, 12, 3, 13, 2, 11, 0, time.UTC)
)

// lvs01Status is the example's director with beijing quiesced by its checks and shanghai drained.
func lvs01Status(shanghaiActive uint32) *protocol.Status {
	return &protocol.Status{
		Services: []protocol.ServiceStatus{{Service: webKey, Scheduler: "rr", Destinations: []protocol.DestinationStatus{
			{Address: shanghai, Port: 80, Weight: 0, Counters: protocol.Counters{ActiveConns: shanghaiActive, InactiveConns: 2, Conns: 120, InPackets: 1466, InBytes: 95_300}},
			{Address: beijing, Port: 80, Weight: 0, Counters: protocol.Counters{Conns: 60}},
		}}},
		Health: &protocol.Health{Heartbeat: time.Now(), PID: 812, Services: []protocol.ServiceHealth{{Service: webKey, Destinations: []protocol.DestinationHealth{
			{Address: shanghai, Port: 80, Healthy: true, Last: "ok (3ms)"},
			{Address: beijing, Port: 80, Quiesced: true, Since: since, Last: "connect: connection refused\x1b[2J"},
		}}}},
		Fresh:  true,
		Drains: []protocol.Drain{{Service: webKey, Address: shanghai, Port: 80, Realserver: "shanghai", Actor: "ops@laptop", Since: since}},
	}
}

// status shows each destination of the director's services with its realserver's name, the
// weights now and in the plan, the counters, and why a weight is 0; realservers are not asked.
func TestStatus(t *testing.T) {
	f := &fakeHosts{status: func(string, protocol.Request) *protocol.Status { return lvs01Status(4) }}
	out, errOut, code := runCLI(t, f, "", "status", "-f", example)
	for _, want := range []string{
		"# lvs01 (director, 198.18.48.181): no health checks\n", // the example's plan has none: the report is not asked for
		"  tcp/198.18.48.180:80 (rr)\n",
		"    198.18.1.183:80   shanghai    0       1     4       2         120    1466     95.3kB  drained by ops@laptop since 2026-12-03T13:02:11Z\n",
		"    198.18.10.182:80  beijing     0       1     0       0         60     0        0B      quiesced since 2026-12-03T13:02:11Z: connect: connection refused\\x1b[2J\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if code != 0 || !slices.Equal(f.calls, []string{"lvs01 status"}) {
		t.Errorf("exit %d, calls %v, stderr %s", code, f.calls, errOut)
	}
	// A destination of the plan the kernel lacks is a row of its own.
	f.status = func(string, protocol.Request) *protocol.Status {
		st := lvs01Status(0)
		st.Services[0].Destinations = st.Services[0].Destinations[:1]
		return st
	}
	if out, _, _ := runCLI(t, f, "", "status", "-f", example); !strings.Contains(out, "    198.18.10.182:80  beijing     -       1     -       -         -      -        -       not in the kernel (drift: run tunplan diff)\n") {
		t.Errorf("status without beijing in the kernel:\n%s", out)
	}
	if _, errOut, code := runCLI(t, f, "", "status", "-f", example, "--hosts", "role:realserver"); code != exitError || !strings.Contains(errOut, "no director is selected") {
		t.Errorf("status of realservers only: exit %d, %s", code, errOut)
	}
	f.status = func(string, protocol.Request) *protocol.Status { return lvs01Status(4) }
	out, _, code = runCLI(t, f, "", "status", "-f", example, "--json")
	var doc struct {
		Directors []struct {
			Host   string
			Status protocol.Status
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 0 || len(doc.Directors) != 1 || doc.Directors[0].Status.Services[0].Destinations[0].InBytes != 95_300 {
		t.Errorf("--json: exit %d, %v\n%s", code, err, out)
	}
}

// drain sends each director of the realserver's services its destinations, and --wait polls the
// directors' status until no active connection is left.
func TestDrainWait(t *testing.T) {
	polls := 0
	var drained []protocol.Drain
	f := &fakeHosts{
		changes: map[string][]change.Change{"lvs01": {{Module: "ipvs", Action: change.Update, Address: "ipvs tcp/198.18.48.180:80 -> 198.18.1.183:80", Before: "weight=1 fwd=tunnel", After: "weight=0 fwd=tunnel"}}},
		status: func(_ string, req protocol.Request) *protocol.Status {
			if req.Op == protocol.OpDrain {
				drained = req.Drains
			}
			if req.Op == protocol.OpStatus {
				polls++
			}
			return lvs01Status(uint32(max(0, 2-polls)))
		},
	}
	out, errOut, code := runCLI(t, f, "", "drain", "shanghai", "-f", example, "--wait", "--timeout", "1m")
	want := []protocol.Drain{{Service: webKey, Address: shanghai, Port: 80, Realserver: "shanghai"}}
	if code != 0 || !slices.Equal(drained, want) || polls != 2 ||
		!strings.Contains(out, "# lvs01: 1 weight changed\n  ~ ipvs tcp/198.18.48.180:80 -> 198.18.1.183:80  weight=1 fwd=tunnel => weight=0 fwd=tunnel\n") ||
		!strings.Contains(out, "shanghai drained on 1 director: weight 0 until tunplan undrain shanghai.\nWaiting for 1 active connection to shanghai…\nNo active connection to shanghai is left.\n") {
		t.Errorf("exit %d, drains %+v, %d polls\n%s\nstderr: %s", code, drained, polls, out, errOut)
	}
	if _, errOut, code := runCLI(t, f, "", "drain", "lvs01", "-f", example); code != exitError || !strings.Contains(errOut, `"lvs01" is not a realserver of the plan`) {
		t.Errorf("drain of a director: exit %d, %s", code, errOut)
	}
}
