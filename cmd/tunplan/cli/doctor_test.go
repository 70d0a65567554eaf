package cli

import (
	"errors"
	"strings"
	"testing"

	"github.com/tunplan/tunplan/inventory/fleet"
	"github.com/tunplan/tunplan/inventory/target"
	"github.com/tunplan/tunplan/modules/protocol"
)

// stateHosts are fake hosts that also answer doctor with a report per host (a healthy one when
// none is set), and whose diff fails where diffErr says, as a helper's does on an unreadable
// generation.
type stateHosts struct {
	*fakeHosts
	reports map[string]protocol.DoctorReport
	diffErr map[string]string
}

type stateSession struct {
	fleet.Session
	h    *stateHosts
	name string
}

func (f *stateHosts) connect(t target.Target) (fleet.Session, error) {
	s, err := f.fakeHosts.connect(t)
	if err != nil {
		return nil, err
	}
	return stateSession{s, f, t.Name}, nil
}

func (s stateSession) Run(req protocol.Request) (protocol.Response, error) {
	resp, err := s.Session.Run(req)
	switch {
	case req.Op == protocol.OpDoctor:
		rep, ok := s.h.reports[s.name]
		if !ok {
			rep = protocol.DoctorReport{Checked: 4}
		}
		resp.Doctor = &rep
	case req.Op == protocol.OpDiff && s.h.diffErr[s.name] != "":
		resp = protocol.Response{Host: s.name, Error: s.h.diffErr[s.name]}
	}
	return resp, err
}

const (
	gen3    = "/var/lib/tunplan/generations/000003.json"
	gen3Err = "generation 3 (" + gen3 + ") is unreadable: unexpected end of JSON input; run `tunplan doctor` to see how to repair it"
)

func sickShanghai() *stateHosts {
	return &stateHosts{fakeHosts: &fakeHosts{}, diffErr: map[string]string{"shanghai": gen3Err}, reports: map[string]protocol.DoctorReport{
		"shanghai": {Checked: 5, Problems: []protocol.StateProblem{{Path: gen3, Issue: "unexpected end of JSON input", Fix: "move it aside, as root on the host: mv " + gen3 + " " + gen3 + ".corrupt; then run tunplan diff"}}},
		"beijing":  {},
	}}
}

// run runs the CLI on the example plan, reaching the hosts through f.
func (f *stateHosts) run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return runOn(t, f.connect, example, args...)
}

// A diff that a host cannot answer (its latest generation cannot be read) fails with exit 1 and
// the host's error, never "No drift".
func TestDiffFailsOnAnUnreadableGeneration(t *testing.T) {
	for _, args := range [][]string{{"diff"}, {"diff", "--json"}} {
		out, errOut, code := sickShanghai().run(t, args...)
		if code != exitError || strings.Contains(out, "No drift") {
			t.Errorf("%v: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", args, code, exitError, out, errOut)
		}
		if !strings.Contains(out+errOut, "host shanghai: "+gen3Err) {
			t.Errorf("%v: the host's error is not shown\nstdout:\n%s\nstderr:\n%s", args, out, errOut)
		}
	}
	if out, _, _ := sickShanghai().run(t, "diff"); !strings.Contains(out, "1 host could not be read.") {
		t.Errorf("stdout:\n%s", out)
	}
}

func TestDoctor(t *testing.T) {
	f := sickShanghai()
	f.reports["shanghai"] = protocol.DoctorReport{Checked: 5}
	out, errOut, code := f.run(t, "doctor")
	want := "beijing: ok (no state: tunplan has not changed it)\nlvs01: ok (4 state files read)\nshanghai: ok (5 state files read)\n\ntunplan's state can be read on 3 hosts.\n"
	if code != exitOK || out != want || errOut != "" {
		t.Errorf("healthy: exit %d\nstdout:\n%s\nwant:\n%s\nstderr:\n%s", code, out, want, errOut)
	}
	for _, c := range f.calls {
		if !strings.HasSuffix(c, " doctor") {
			t.Errorf("doctor sent %q", c)
		}
	}

	out, errOut, code = sickShanghai().run(t, "doctor")
	want = "shanghai: 1 problem in 5 state files\n  " + gen3 + ": unexpected end of JSON input\n    fix: move it aside, as root on the host: mv " + gen3 + " " + gen3 + ".corrupt; then run tunplan diff\n\n1 host has unreadable state: repair it as each fix says.\n"
	if code != exitUnhealthy || !strings.HasSuffix(out, want) || errOut != "" {
		t.Errorf("a problem: exit %d\nstdout:\n%s\nwant it to end with:\n%s\nstderr:\n%s", code, out, want, errOut)
	}

	// A host that cannot be checked wins over a problem found elsewhere: 1, with its error once.
	f = sickShanghai()
	f.fail = map[string]error{"beijing": errors.New("host beijing: connect 198.19.0.22:22: connection refused")}
	out, errOut, code = f.run(t, "doctor")
	if code != exitError || strings.Count(out+errOut, "connection refused") != 1 || !strings.HasSuffix(out, "\n1 host could not be checked.\n1 host has unreadable state: repair it as each fix says.\n") || !strings.Contains(out, gen3+": unexpected end") {
		t.Errorf("unreachable host: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	out, _, code = f.run(t, "doctor", "--hosts", "lvs01")
	if code != exitOK || !strings.HasPrefix(out, "lvs01: ok") || strings.Contains(out, "shanghai") {
		t.Errorf("--hosts lvs01: exit %d\n%s", code, out)
	}
	if out, _, code := runCLI(t, &fakeHosts{}, "", "doctor", "--help"); code != exitOK || !strings.Contains(out, "Examples:") || !strings.Contains(out, "--hosts") {
		t.Errorf("doctor --help: exit %d\n%s", code, out)
	}
}
