package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tunplan/tunplan/testinfra/lab"
)

// loopEnv, set to "URL DURATION", makes this test binary a client that GETs URL ten times a second
// for DURATION, printing "<unix nanoseconds> ok" or "<unix nanoseconds> <error>" per request: one
// process, no fork per request, so the lab's emulated CPU keeps the pace that curl in a shell loop
// cannot.
const loopEnv = "TUNPLAN_E2E_LOOP"

func requestLoop(spec string) int {
	url, d, ok := strings.Cut(spec, " ")
	dur, err := time.ParseDuration(d)
	if !ok || err != nil {
		fmt.Fprintf(os.Stderr, "%s: want \"URL DURATION\", have %q\n", loopEnv, spec)
		return 2
	}
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for end := time.Now().Add(dur); time.Now().Before(end); <-tick.C {
		at := time.Now()
		result := "ok"
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		cancel()
		if err != nil {
			result = strings.ReplaceAll(err.Error(), "\n", " ")
		}
		fmt.Printf("%d %s\n", at.UnixNano(), result)
	}
	return 0
}

// startLoop runs the request loop on the client host in the background, into /tmp/loop.log there,
// and returns a function that stops it and returns each request's time and result.
func startLoop(t *testing.T, url string, dur time.Duration) func() []loopResult {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(lab.RunDir(), "loop-client") // the run directory is visible in every host
	if out, err := lab.Exec(lab.Control, "cp", self, bin); err != nil {
		t.Fatalf("copy the loop client: %v\n%s", err, out)
	}
	sh(t, "client", loopEnv+"='"+url+" "+dur.String()+"' "+bin+" >/tmp/loop.log 2>&1 </dev/null & echo $! >/tmp/loop.pid")
	return func() []loopResult {
		t.Helper()
		lab.Sh("client", "kill $(cat /tmp/loop.pid) 2>/dev/null")
		var out []loopResult
		for _, l := range strings.Split(strings.TrimSpace(sh(t, "client", "cat /tmp/loop.log")), "\n") {
			var ns int64
			var rest string
			if n, _ := fmt.Sscanf(l, "%d", &ns); n == 1 {
				_, rest, _ = strings.Cut(l, " ")
				out = append(out, loopResult{time.Unix(0, ns), rest})
			}
		}
		return out
	}
}

type loopResult struct {
	at     time.Time
	result string // "ok", or why the request failed
}
