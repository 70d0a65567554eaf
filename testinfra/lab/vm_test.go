package lab

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestSoftLockupBeforeTopologyIsABootToRetry: the console watcher kills a VM whose kernel reports a
// soft lockup before the topology is up, and leaves one that reports it later alone.
func TestSoftLockupBeforeTopologyIsABootToRetry(t *testing.T) {
	lockup := "[   28.491326] watchdog: BUG: soft lockup - CPU#0 stuck for 26s! [sshd:213]\r\n"
	cases := []struct {
		name, console string
		stuck         bool
	}{
		{"lockup while booting", bootMarker + "\r\n" + lockup + lockup, true},
		{"lockup after the topology is up", bootMarker + "\r\nlab: topology up in 1.7s\n" + lockup, false},
		{"no lockup", bootMarker + "\r\nlab: topology up in 1.7s\nPASS\n", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			kills := 0
			vm := &VM{Stdout: &out}
			stuck := vm.copyConsole(strings.NewReader(c.console), time.Now(), func() { kills++ })
			if stuck != c.stuck || kills != map[bool]int{true: 1, false: 0}[c.stuck] {
				t.Errorf("stuck %v after %d kills, want %v", stuck, kills, c.stuck)
			}
			if !strings.Contains(out.String(), "lab: VM booted in") {
				t.Errorf("console copy:\n%s", out.String())
			}
		})
	}
}
