package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A run cut short (failed, or killed at the VM's limit) leaves the figures measured until then.
func TestResultsAreWrittenAsMeasured(t *testing.T) {
	b := &Bench{Runs: 1, Values: map[string]float64{}, dir: t.TempDir()}
	b.set("ipvs_load_helper_s", 1.25)
	b.row(Row{What: "load", Unit: "s", Tunplan: 1.25, Peer: "ipvsadm-restore", PeerValue: 2.5})
	md, err := os.ReadFile(filepath.Join(b.dir, "results.md"))
	if err != nil || !strings.Contains(string(md), "**Partial:**") || !strings.Contains(string(md), "| load | 1.250 s | ipvsadm-restore | 2.500 s | 0.500 |") {
		t.Fatalf("results.md after one figure (%v):\n%s", err, md)
	}
	var j map[string]any
	raw, _ := os.ReadFile(filepath.Join(b.dir, "results.json"))
	if err := json.Unmarshal(raw, &j); err != nil || j["ipvs_load_helper_s"] != 1.25 || j["complete"] != false {
		t.Errorf("results.json: %s (%v)", raw, err)
	}
	b.Done = true
	if err := b.write(); err != nil {
		t.Fatal(err)
	}
	if md, _ := os.ReadFile(filepath.Join(b.dir, "results.md")); strings.Contains(string(md), "Partial") {
		t.Errorf("a complete run says partial:\n%s", md)
	}
}

// The VM's limit grows with the work asked, and -timeout overrides it.
func TestVMTimeoutIsSizedFromTheWork(t *testing.T) {
	defer func(r int, o string, d time.Duration) { *runs, *only, *timeout = r, o, d }(*runs, *only, *timeout)
	*runs, *only = 3, ""
	full := vmTimeout()
	*only = "plan"
	planOnly := vmTimeout()
	*runs, *only = 5, ""
	deeper := vmTimeout()
	if !(planOnly < full && full < deeper) || full < 60*time.Minute {
		t.Errorf("plan only %s, full %s, 5 runs %s", planOnly, full, deeper)
	}
	*timeout = 7 * time.Minute
	if got := vmTimeout(); got != 7*time.Minute {
		t.Errorf("-timeout 7m: %s", got)
	}
}
