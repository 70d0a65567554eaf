package protocol

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tunplan/tunplan/modules/change"
)

// Values that cross the process boundary decode only to values this side knows: a newer peer's
// operation, phase, outcome, kind, role or action is an error, never a silent zero value.
func TestUnknownValuesAreErrors(t *testing.T) {
	cases := []struct {
		doc  string
		into any
		want string
	}{
		{`{"op":"reboot"}`, &Request{}, `unknown operation "reboot"`},
		{`{"op":"apply","phase":"half"}`, &Request{}, `unknown phase "half"`},
		{`{"host":"a","changes":[],"outcome":"partly"}`, &Response{}, `unknown outcome "partly"`},
		{`{"host":"a","changes":[{"module":"ipvs","address":"x","action":"replace"}]}`, &Response{}, `unknown change action "replace"`},
		{`{"n":1,"time":"t","kind":"adopt","changes":0,"state":{}}`, &Generation{}, `unknown generation kind "adopt"`},
		{`["director","loadbalancer"]`, &[]Role{}, `unknown role "loadbalancer"`},
	}
	for _, c := range cases {
		err := json.Unmarshal([]byte(c.doc), c.into)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error with %q", c.doc, err, c.want)
		}
	}
}

func TestKnownValuesRoundTrip(t *testing.T) {
	to := 0
	req := Request{Op: OpApply, Host: "lvs01", Phase: PhaseRemove, To: &to, RunID: "r1"}
	resp := Response{Host: "lvs01", Outcome: RestoreFailed, Changes: []change.Change{{Module: "ipvs", Address: "a", Action: change.Delete, Before: "b"}},
		Generations: []Generation{{N: 0, Kind: KindBaseline}, {N: 1, Kind: KindRollback}}, LastRun: &LastRun{Op: OpRollback, Outcome: FailedBeforeChanging}}
	for _, v := range []any{req, resp} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		switch v := v.(type) {
		case Request:
			var got Request
			if err := json.Unmarshal(b, &got); err != nil || got.Op != v.Op || got.Phase != v.Phase || *got.To != 0 {
				t.Errorf("request %s: got %+v, %v", b, got, err)
			}
		case Response:
			var got Response
			if err := json.Unmarshal(b, &got); err != nil || got.Outcome != v.Outcome || got.Changes[0].Action != change.Delete ||
				got.Generations[1].Kind != KindRollback || got.LastRun.Outcome != FailedBeforeChanging {
				t.Errorf("response %s: got %+v, %v", b, got, err)
			}
		}
	}
	// PhaseAll is the empty phase, as an apply of every change sends it.
	var r Request
	if err := json.Unmarshal([]byte(`{"op":"apply","phase":""}`), &r); err != nil || r.Phase != PhaseAll {
		t.Errorf("empty phase: %+v %v", r, err)
	}
}
