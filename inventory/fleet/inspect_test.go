package fleet

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/tunplan/tunplan/inventory/target"
	"github.com/tunplan/tunplan/modules/protocol"
)

// inventorySession answers inspect with its inventory (nil: an answer without one).
type inventorySession struct{ inv *protocol.Inventory }

func (s inventorySession) Close() error { return nil }

func (s inventorySession) Run(req protocol.Request) (protocol.Response, error) {
	if req.Op != protocol.OpInspect {
		return protocol.Response{}, errors.New("unexpected " + string(req.Op))
	}
	return protocol.Response{Host: req.Host, Inventory: s.inv}, nil
}

func TestInspect(t *testing.T) {
	lvs := &protocol.Inventory{Services: []protocol.Service{{Protocol: "tcp", Address: netip.MustParseAddr("198.18.48.180"), Port: 80, Scheduler: "rr"}}}
	invs := map[string]*protocol.Inventory{"lvs01": lvs, "old": nil}
	dial := func(t target.Target) (Session, error) {
		if t.Name == "gone" {
			return nil, errors.New("host gone: connection refused")
		}
		return inventorySession{invs[t.Name]}, nil
	}
	var hosts []Host
	for _, n := range []string{"lvs01", "old", "gone"} {
		hosts = append(hosts, Host{Target: target.Target{Name: n}})
	}
	r := Open(hosts, dial, Options{Parallel: 2})
	defer r.Close()
	r.Inspect()
	by := map[string]*HostRun{}
	for _, h := range r.Hosts {
		by[h.Name()] = h
	}
	if got := by["lvs01"].Inventory(); got != lvs || by["lvs01"].Err() != nil {
		t.Errorf("lvs01: %+v %v", got, by["lvs01"].Err())
	}
	if err := by["old"].Err(); by["old"].Inventory() != nil || err == nil || !strings.Contains(err.Error(), "without an inventory") {
		t.Errorf("old: %v", err)
	}
	if _, took := by["gone"].Result(Inspect); took || by["gone"].Inventory() != nil {
		t.Error("an unreachable host took part in inspect")
	}
}
