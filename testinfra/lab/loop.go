package lab

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// LoopEnv, set to "URL DURATION", makes a lab program (a test binary, the bench) a client that GETs
// URL ten times a second for DURATION, printing "<unix nanoseconds> ok" or "<unix nanoseconds>
// <error>" per request: one process, no fork per request, so the lab's emulated CPU keeps the pace
// that curl in a shell loop cannot. The program calls RequestLoop first thing when it is set.
const LoopEnv = "TUNPLAN_LAB_LOOP"

// RequestLoop is the client LoopEnv asks for; it returns the program's exit status.
func RequestLoop(spec string) int {
	url, d, ok := strings.Cut(spec, " ")
	dur, err := time.ParseDuration(d)
	if !ok || err != nil {
		fmt.Fprintf(os.Stderr, "%s: want \"URL DURATION\", have %q\n", LoopEnv, spec)
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

// LoopResult is one request of the loop: when it was sent, and "ok" or why it failed.
type LoopResult struct {
	At     time.Time
	Result string
}

// StartLoop runs the request loop on the client host in the background, for at most dur, into
// /tmp/loop.log there. self is the running program (which honours LoopEnv); it is copied into the
// run directory, which every host sees. The function it returns stops the loop and returns each
// request's time and result.
func StartLoop(self, url string, dur time.Duration) (func() ([]LoopResult, error), error) {
	bin := filepath.Join(RunDir(), "loop-client")
	if out, err := Exec(Control, "cp", self, bin); err != nil {
		return nil, fmt.Errorf("copy the loop client: %w: %s", err, out)
	}
	if out, err := Sh("client", LoopEnv+"='"+url+" "+dur.String()+"' "+bin+" >/tmp/loop.log 2>&1 </dev/null & echo $! >/tmp/loop.pid"); err != nil {
		return nil, fmt.Errorf("start the loop client: %w: %s", err, out)
	}
	return func() ([]LoopResult, error) {
		Sh("client", "kill $(cat /tmp/loop.pid) 2>/dev/null")
		log, err := Sh("client", "cat /tmp/loop.log")
		if err != nil {
			return nil, fmt.Errorf("the loop client's log: %w: %s", err, log)
		}
		var out []LoopResult
		for _, l := range strings.Split(strings.TrimSpace(log), "\n") {
			var ns int64
			if n, _ := fmt.Sscanf(l, "%d", &ns); n == 1 {
				_, rest, _ := strings.Cut(l, " ")
				out = append(out, LoopResult{time.Unix(0, ns), rest})
			}
		}
		return out, nil
	}, nil
}
