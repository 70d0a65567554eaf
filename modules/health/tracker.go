package health

import (
	"time"

	"github.com/tunplan/tunplan/modules/protocol"
)

// tracker is one destination's health: fall failures in a row take it out, rise successes in a
// row bring it back. A destination starts healthy (as keepalived's checkers do), so a watcher that
// starts does not take out what serves until it has seen it fail.
type tracker struct {
	dest       protocol.CheckedDestination
	healthy    bool
	since      time.Time
	run        int // consecutive results that disagree with healthy
	last       string
	checks     uint64
	failures   uint64
	fall, rise int
}

func newTracker(d protocol.CheckedDestination, fall, rise int, now time.Time) *tracker {
	return &tracker{dest: d, healthy: true, since: now, fall: fall, rise: rise, last: "not checked yet"}
}

// observe records one check's result (nil: passed) and tells whether the destination's health
// changed.
func (t *tracker) observe(err error, took time.Duration, now time.Time) bool {
	t.checks++
	ok := err == nil
	if ok {
		t.last = "ok (" + took.Round(time.Millisecond).String() + ")"
	} else {
		t.failures++
		t.last = err.Error()
	}
	if ok == t.healthy {
		t.run = 0
		return false
	}
	t.run++
	need := t.fall
	if ok {
		need = t.rise
	}
	if t.run < need {
		return false
	}
	t.healthy, t.since, t.run = ok, now, 0
	return true
}

// weights is what each destination of a service gets: its plan weight, or 0 while it is unhealthy,
// unless every destination is (fail open: a checker that sees nothing must not take a whole
// service down; failOpen tells so).
func weights(ts []*tracker) (w []uint32, failOpen bool) {
	failOpen = len(ts) > 0
	for _, t := range ts {
		if t.healthy {
			failOpen = false
		}
	}
	for _, t := range ts {
		if t.healthy || failOpen {
			w = append(w, t.dest.Weight)
		} else {
			w = append(w, 0)
		}
	}
	return w, failOpen
}
