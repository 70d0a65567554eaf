package fleet

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/tunplan/tunplan/inventory/target"
	"github.com/tunplan/tunplan/modules/protocol"
)

// doctorSession answers doctor with its report (nil: an answer without one) and nothing else.
type doctorSession struct {
	rep  *protocol.DoctorReport
	mu   *sync.Mutex
	reqs *[]protocol.Request
}

func (s doctorSession) Close() error { return nil }

func (s doctorSession) Run(req protocol.Request) (protocol.Response, error) {
	s.mu.Lock()
	*s.reqs = append(*s.reqs, req)
	s.mu.Unlock()
	if req.Op != protocol.OpDoctor {
		return protocol.Response{}, errors.New("unexpected " + string(req.Op))
	}
	return protocol.Response{Host: req.Host, Doctor: s.rep}, nil
}

// Doctor asks each reachable host once, with a plain request (no lock, no claim, no run), and keeps
// each host's report; a host that answers without one fails.
func TestDoctor(t *testing.T) {
	sick := &protocol.DoctorReport{Checked: 3, Problems: []protocol.StateProblem{{Path: "/var/lib/tunplan/generations/000002.json", Issue: "the file is empty", Fix: "mv …"}}}
	reps := map[string]*protocol.DoctorReport{"lvs01": {Checked: 4}, "shanghai": sick, "old": nil}
	var mu sync.Mutex
	var reqs []protocol.Request
	dial := func(t target.Target) (Session, error) {
		if t.Name == "gone" {
			return nil, errors.New("host gone: connection refused")
		}
		return doctorSession{reps[t.Name], &mu, &reqs}, nil
	}
	var hosts []Host
	for _, n := range []string{"lvs01", "shanghai", "old", "gone"} {
		hosts = append(hosts, Host{Target: target.Target{Name: n}})
	}
	r := Open(hosts, dial, Options{Parallel: 2})
	defer r.Close()
	r.Doctor()
	by := map[string]*HostRun{}
	for _, h := range r.Hosts {
		by[h.Name()] = h
	}
	if got := by["lvs01"].DoctorReport(); got == nil || !got.Healthy() || by["lvs01"].Err() != nil {
		t.Errorf("lvs01: %+v %v", got, by["lvs01"].Err())
	}
	if got := by["shanghai"].DoctorReport(); got != sick || by["shanghai"].Err() != nil {
		t.Errorf("shanghai: %+v %v", got, by["shanghai"].Err())
	}
	if err := by["old"].Err(); by["old"].DoctorReport() != nil || err == nil || !strings.Contains(err.Error(), "without a report") {
		t.Errorf("old: %v", err)
	}
	if _, took := by["gone"].Result(Doctor); took || by["gone"].DoctorReport() != nil {
		t.Error("an unreachable host took part in doctor")
	}
	if len(reqs) != 3 {
		t.Fatalf("requests %+v, want one per reachable host", reqs)
	}
	for _, req := range reqs {
		if req.Claim || req.RunID != "" || req.LockWaitMS != 0 || req.Host == "" {
			t.Errorf("request %+v, want a plain doctor request", req)
		}
	}
}
