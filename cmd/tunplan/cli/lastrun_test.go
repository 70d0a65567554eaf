package cli

import (
	"testing"

	"github.com/tunplan/tunplan/modules/protocol"
)

func TestLastRunNote(t *testing.T) {
	cases := []struct {
		run  protocol.LastRun
		want string
	}{
		{protocol.LastRun{Op: protocol.OpApply, RunID: "r1", Actor: "alice@ops1", Time: "2026-11-25T10:00:00Z", Outcome: protocol.Applied, Generation: 3},
			"! lvs01: the last apply (run r1 by alice@ops1, finished 2026-11-25T10:00:00Z) lost its connection before reporting; outcome: applied, generation 3"},
		{protocol.LastRun{Op: protocol.OpApply, RunID: "r2", Actor: "bob@ops2", Time: "2026-11-25T11:00:00Z", Outcome: protocol.Restored, Error: "ipvs: create: file exists"},
			"! lvs01: the last apply (run r2 by bob@ops2, finished 2026-11-25T11:00:00Z) lost its connection before reporting; outcome: restored (ipvs: create: file exists)"},
		{protocol.LastRun{Op: protocol.OpRollback, RunID: "r3", Actor: "carol@ops3", Time: "2026-11-25T12:00:00Z", Outcome: protocol.RestoreFailed, Error: "boom", Reported: true},
			"! lvs01: the last rollback (run r3 by carol@ops3, finished 2026-11-25T12:00:00Z) outcome: restore-failed (boom)"},
	}
	for _, c := range cases {
		if got := lastRunNote("lvs01", &c.run); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
	}
}
