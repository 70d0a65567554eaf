package cli

import (
	"bufio"
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/tunplan/tunplan/inventory/fleet"
	"github.com/tunplan/tunplan/inventory/target"
	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/protocol"
)

// destroyHosts are fake hosts that record every destroy request, in order, as "host dry|keep|plain",
// and fail the destroy of the hosts in fail.
type destroyHosts struct {
	*fakeHosts
	mu   sync.Mutex
	log  []string
	fail map[string]bool
}

type destroySession struct {
	fleet.Session
	h    *destroyHosts
	name string
}

func (f *destroyHosts) connect(t target.Target) (fleet.Session, error) {
	s, err := f.fakeHosts.connect(t)
	if err != nil {
		return nil, err
	}
	return destroySession{s, f, t.Name}, nil
}

func (s destroySession) Run(req protocol.Request) (protocol.Response, error) {
	if req.Op != protocol.OpDestroy {
		return s.Session.Run(req)
	}
	kind := "plain"
	switch {
	case req.DryRun:
		kind = "dry"
	case req.KeepHistory:
		kind = "keep"
	}
	s.h.mu.Lock()
	s.h.log = append(s.h.log, s.name+" "+kind)
	s.h.mu.Unlock()
	resp := protocol.Response{Host: s.name, Changes: []change.Change{{Module: "ipvs", Address: "ipvs tcp/198.18.48.180:80", Action: change.Delete, Before: "scheduler=rr persistence=0"}}}
	if !req.DryRun {
		if s.h.fail[s.name] {
			return protocol.Response{Host: s.name, Error: "ipvs: del service: busy", Outcome: protocol.Restored}, nil
		}
		resp.Outcome = protocol.Applied
	}
	return resp, nil
}

func runDestroy(t *testing.T, f *destroyHosts, stdin string, interactive bool, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	io := &IOStreams{In: bufio.NewReader(strings.NewReader(stdin)), Out: &out, ErrOut: &errOut, Interactive: interactive}
	code := run(io, f.connect, nil, append([]string{"destroy", "-f", example}, args...))
	return out.String(), errOut.String(), code
}

func TestDestroyPreviewsAsksThenGoesDirectorsFirst(t *testing.T) {
	f := &destroyHosts{fakeHosts: &fakeHosts{}}
	out, errOut, code := runDestroy(t, f, "yes\n", true)
	if code != exitOK || !strings.Contains(out, "Destroy: 0 to add, 0 to change, 3 to destroy, then the helper and /var/lib/tunplan on 3 hosts.") ||
		!strings.Contains(out, "Destroy complete! 3 hosts cleaned: beijing, lvs01, shanghai.") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	// Three previews (any order), then the director, then both realservers.
	if len(f.log) != 6 || f.log[3] != "lvs01 plain" || !strings.HasSuffix(f.log[4], " plain") || strings.HasPrefix(f.log[4], "lvs01") {
		t.Errorf("requests %v", f.log)
	}
	for _, l := range f.log[:3] {
		if !strings.HasSuffix(l, " dry") {
			t.Errorf("requests %v: the first three must be previews", f.log)
		}
	}
}

func TestDestroyAnswersAndFlags(t *testing.T) {
	f := &destroyHosts{fakeHosts: &fakeHosts{}}
	if out, _, code := runDestroy(t, f, "no\n", true); code != exitOK || !strings.Contains(out, "Destroy cancelled.") || len(f.log) != 3 {
		t.Errorf("answer no: exit %d, requests %v\n%s", code, f.log, out)
	}
	f = &destroyHosts{fakeHosts: &fakeHosts{}}
	if _, errOut, code := runDestroy(t, f, "", false); code != exitError || !strings.Contains(errOut, "--auto-approve") || len(f.log) != 3 {
		t.Errorf("no terminal: exit %d, requests %v\n%s", code, f.log, errOut)
	}
	f = &destroyHosts{fakeHosts: &fakeHosts{}}
	if _, _, code := runDestroy(t, f, "", false, "--auto-approve", "--keep-history", "--hosts", "beijing"); code != exitOK || strings.Join(f.log, ",") != "beijing dry,beijing keep" {
		t.Errorf("--keep-history --hosts beijing: exit %d, requests %v", code, f.log)
	}
}

func TestDestroyStopsWhenADirectorFails(t *testing.T) {
	f := &destroyHosts{fakeHosts: &fakeHosts{}, fail: map[string]bool{"lvs01": true}}
	out, errOut, code := runDestroy(t, f, "", false, "--auto-approve")
	if code != exitError || len(f.log) != 4 || !strings.Contains(errOut, "host lvs01: ipvs: del service: busy (outcome: restored)") || !strings.Contains(out, "Destroy failed: 0 hosts cleaned") {
		t.Errorf("exit %d, requests %v\n%s\n%s", code, f.log, out, errOut)
	}
}
