package e2e

import (
	"os"
	"testing"
	"time"

	"github.com/tunplan/tunplan/testinfra/lab"
)

// startLoop runs the lab's request loop (lab.StartLoop) with this test binary as the client, and
// returns a function that stops it and returns each request's time and result.
func startLoop(t *testing.T, url string, dur time.Duration) func() []lab.LoopResult {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	stop, err := lab.StartLoop(self, url, dur)
	if err != nil {
		t.Fatal(err)
	}
	return func() []lab.LoopResult {
		t.Helper()
		out, err := stop()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
}
