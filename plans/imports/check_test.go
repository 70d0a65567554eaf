package imports

import (
	"reflect"
	"strings"
	"testing"

	"github.com/tunplan/tunplan/modules/change"
)

// A director whose forwarding is off gets ip_forward = false, and the plan then leaves it so.
func TestLeaveAloneIPForward(t *testing.T) {
	p, loaded, _ := load(t, twoDirectors(), defaultSSH)
	if got := loaded.Desired()["lvs01"].Sysctls; len(got) != 1 || got[0].Key != "net.ipv4.ip_forward" {
		t.Fatalf("lvs01's sysctls before: %v", got)
	}
	forward := change.Change{Module: "sysctl", Address: "sysctl net.ipv4.ip_forward", Action: change.Update, Before: "0", After: "1"}
	other := change.Change{Module: "sysctl", Address: "sysctl net.ipv4.conf.all.rp_filter", Action: change.Update, Before: "1", After: "0"}

	for _, c := range []struct {
		host    string
		changes []change.Change
	}{
		{"web1", []change.Change{forward}},  // not a director
		{"spare", []change.Change{forward}}, // not in the plan
		{"lvs02", []change.Change{other}},   // forwarding on already
		{"lvs02", []change.Change{{Module: "sysctl", Address: "sysctl net.ipv4.ip_forward", Action: change.Update, Before: "1", After: "0"}}},
	} {
		if got, notes := p.LeaveAlone(c.host, c.changes); notes != nil || !reflect.DeepEqual(got, c.changes) {
			t.Errorf("%s: %v, %q", c.host, got, notes)
		}
	}
	in := []change.Change{other, forward}
	got, notes := p.LeaveAlone("lvs01", in)
	if !reflect.DeepEqual(got, []change.Change{other}) || !reflect.DeepEqual(in, []change.Change{other, forward}) {
		t.Errorf("changes %v (given %v)", got, in)
	}
	if want := "lvs01: net.ipv4.ip_forward is 0 there: the plan says ip_forward = false, so tunplan leaves it alone"; len(notes) != 1 || !strings.HasPrefix(notes[0], want) {
		t.Errorf("notes %q, want %q", notes, want)
	}
	if !strings.Contains(string(p.HCL()), "host \"lvs01\" {\n  role       = \"director\"\n  address    = \"198.19.0.11\"\n  ip_forward = false\n}\n") {
		t.Errorf("plan:\n%s", p.HCL())
	}
	loaded, _, _, err := p.Check("test.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if got := loaded.Desired()["lvs01"].Sysctls; got != nil {
		t.Errorf("lvs01's sysctls after: %v", got)
	}
}

// Check names the plan in its diagnostics as told.
func TestCheckFilename(t *testing.T) {
	p, _, err := Build(twoDirectors(), SSH{User: DefaultUser, Port: DefaultPort, KnownHosts: "/nonexistent/known_hosts"})
	if err != nil {
		t.Fatal(err)
	}
	_, files, diags, err := p.Check("<stdout>")
	if err != nil || files["<stdout>"] == nil || len(diags) != 1 || diags[0].Subject.Filename != "<stdout>" || !strings.Contains(diags[0].Summary, "known_hosts file not found") {
		t.Errorf("error %v, files %v, diagnostics %v", err, files, diags)
	}
}

// A realserver set up without the ARP settings (as the manual's script does) gets hide_vip = false.
func TestLeaveAloneHideVIP(t *testing.T) {
	p, _, _ := load(t, twoDirectors(), defaultSSH)
	ignore := change.Change{Module: "sysctl", Address: "sysctl net.ipv4.conf.all.arp_ignore", Action: change.Update, Before: "0", After: "1"}
	announce := change.Change{Module: "sysctl", Address: "sysctl net.ipv4.conf.all.arp_announce", Action: change.Update, Before: "0", After: "2"}
	vip := change.Change{Module: "tunnel", Address: "tunnel tunl0 198.18.48.180/32", Action: change.Create, After: "present"}
	if got, notes := p.LeaveAlone("lvs01", []change.Change{ignore}); notes != nil || len(got) != 1 {
		t.Errorf("a director: %v %q", got, notes)
	}
	got, notes := p.LeaveAlone("web1", []change.Change{ignore, vip, announce})
	if !reflect.DeepEqual(got, []change.Change{vip}) || len(notes) != 1 || !strings.Contains(notes[0], "hide_vip = false") {
		t.Errorf("web1: %v %q", got, notes)
	}
	loaded, _, _, err := p.Check("test.hcl")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range loaded.Desired()["web1"].Sysctls {
		if strings.Contains(s.Key, "arp_") {
			t.Errorf("web1 still gets %s", s.Key)
		}
	}
	if !strings.Contains(string(p.HCL()), "hide_vip = false") {
		t.Errorf("plan:\n%s", p.HCL())
	}
}
