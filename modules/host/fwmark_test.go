package host

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/tunplan/tunplan/modules/protocol"
)

// A firewall-mark service is owned like an address service: the latest generation keeps its mark,
// so a rollback to before tunplan reads it and removes it (the mark is part of its identity).
func TestFWMarkServiceRollsBack(t *testing.T) {
	f := newFake()
	e := newEngine(t, f)
	st := director("rr", 1, 1)
	st.Services = append(st.Services, protocol.Service{Address: netip.IPv4Unspecified(), FWMark: 1, Scheduler: "rr", Persistence: 300,
		Destinations: []protocol.Destination{{Address: rip1, Weight: 1, Forward: "tunnel"}}})
	r := mustHandle(t, e, protocol.Request{Op: protocol.OpApply, Desired: st, RunID: "r1"})
	if !strings.Contains(shown(r), "+ ipvs fwmark/1  scheduler=rr persistence=300") || !strings.Contains(shown(r), "+ ipvs fwmark/1 -> 198.18.1.183:0  weight=1 fwd=tunnel") {
		t.Errorf("apply:\n%s", shown(r))
	}
	latest, err := e.latestGeneration()
	if err != nil || !scopeOf(latest.State).services[protocol.Key{Address: netip.IPv4Unspecified(), FWMark: 1}] {
		t.Fatalf("the latest generation's scope lacks fwmark/1: %v %+v", err, latest)
	}
	if r := mustHandle(t, e, protocol.Request{Op: protocol.OpDiff, Desired: st}); len(r.Changes) != 0 {
		t.Errorf("diff after apply:\n%s", shown(r))
	}
	r = mustHandle(t, e, protocol.Request{Op: protocol.OpRollback, To: new(int), RunID: "r2"})
	if !strings.Contains(shown(r), "- ipvs fwmark/1  scheduler=rr persistence=300 destinations=1") {
		t.Errorf("rollback to 0:\n%s", shown(r))
	}
	if len(f.svcs) != 0 {
		t.Errorf("services left: %v", f.svcs)
	}
}
