package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/tunplan/tunplan/modules/protocol"
)

// FuzzDecode feeds arbitrary bytes to the helper's input loop: never a panic, one JSON response line
// for each request read, and a request that decodes encodes back to JSON.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"op":"diff","host":"lvs01","desired":{"modules":["ip_vs"],"services":[{"protocol":"tcp","address":"198.18.48.180","port":80,"scheduler":"rr","destinations":[{"address":"198.18.1.183","port":80,"weight":1,"forward":"tunnel"}]}]}}`))
	f.Add([]byte(`{"op":"rollback","to":0}`))
	f.Add([]byte(`{"op":"apply","desired":{"links":[{"name":"tunl0","addresses":["198.18.48.180/32"]}]}}`))
	f.Add([]byte(`{"op":"diff","unknown":1}`))
	f.Add([]byte("{\"op\":\"diff\"}\n{\"op\":\"apply\",\"phase\":\"add\"}\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		h := &recorder{}
		var out bytes.Buffer
		code := serve(bytes.NewReader(in), &out, h)
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if out.Len() == 0 {
			lines = nil
		}
		wantLines := len(h.reqs)
		if code == 2 {
			wantLines++
		}
		if code != 0 && code != 2 || len(lines) != wantLines {
			t.Fatalf("exit %d with %d requests handled and %d answers", code, len(h.reqs), len(lines))
		}
		for _, l := range lines {
			var r protocol.Response
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatalf("answer %q is not a response: %v", l, err)
			}
		}
		for _, r := range h.reqs {
			if _, err := json.Marshal(r); err != nil {
				t.Fatalf("decoded request does not encode: %v", err)
			}
		}
	})
}

// recorder is a handler that answers each request with its operation and counts deliveries.
type recorder struct {
	reqs      []protocol.Request
	delivered int
}

func (r *recorder) Handle(req protocol.Request) protocol.Response {
	r.reqs = append(r.reqs, req)
	return protocol.Response{Host: string(req.Op)}
}

func (r *recorder) Delivered() { r.delivered++ }

func TestServe(t *testing.T) {
	cases := []struct {
		name, in  string
		code      int
		answers   []string // each answer's operation (echoed as its host), or its error
		delivered int
	}{
		{"one request, as a single run of the helper", `{"op":"diff"}`, 0, []string{"diff"}, 1},
		{"diff then apply on one session", "{\"op\":\"diff\"}\n{\"op\":\"apply\",\"phase\":\"add\"}\n", 0, []string{"diff", "apply"}, 2},
		{"no request", "", 0, nil, 0},
		{"a misspelt field stops the loop", "{\"op\":\"diff\"}\n{\"op\":\"apply\",\"desried\":{}}\n{\"op\":\"diff\"}\n", 2,
			[]string{"diff", `helper: bad request: json: unknown field "desried"`}, 1},
		{"an unknown operation is refused, not served as a no-op", "{\"op\":\"reboot\"}\n", 2, []string{`helper: bad request: unknown operation "reboot"`}, 0},
		{"an unknown phase", "{\"op\":\"apply\",\"phase\":\"some\"}\n", 2, []string{`helper: bad request: unknown phase "some"`}, 0},
		{"a truncated request", `{"op":"apply","desired":{`, 2, []string{"helper: bad request: unexpected EOF"}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := &recorder{}
			var out bytes.Buffer
			code := serve(strings.NewReader(c.in), &out, h)
			var answers []string
			sc := bufio.NewScanner(&out)
			for sc.Scan() {
				var r protocol.Response
				if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
					t.Fatalf("answer %q: %v", sc.Text(), err)
				}
				answers = append(answers, r.Host+r.Error)
			}
			if code != c.code || strings.Join(answers, "|") != strings.Join(c.answers, "|") || h.delivered != c.delivered {
				t.Errorf("exit %d, answers %q, delivered %d; want exit %d, answers %q, delivered %d", code, answers, h.delivered, c.code, c.answers, c.delivered)
			}
		})
	}
}

type brokenPipe struct{}

func (brokenPipe) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestServeStopsWhenNobodyReads(t *testing.T) {
	h := &recorder{}
	if code := serve(strings.NewReader("{\"op\":\"apply\"}\n{\"op\":\"apply\"}\n"), brokenPipe{}, h); code != 3 || len(h.reqs) != 1 || h.delivered != 0 {
		t.Errorf("exit %d after %d requests, %d delivered; want 3 after the first, none delivered", code, len(h.reqs), h.delivered)
	}
}
