package plans

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// mssPlan is a director d, a realserver r (with the attribute lines given), a director-and-
// realserver b, and a service that uses r and b.
func mssPlan(d, r, b string) string {
	return `host "d" {
  role    = "director"
  address = "198.18.0.1"` + d + `
}
host "r" {
  role    = "realserver"
  address = "198.18.1.1"` + r + `
}
host "b" {
  role    = ["director", "realserver"]
  address = "198.18.2.1"` + b + `
}
virtual_service "web" {
  vip       = "198.18.0.100"
  port      = 80
  directors = ["d"]
  realserver "r" {}
  realserver "b" {}
}
`
}

// TestTunnelMSS: tunnel_mss on a realserver becomes the advmss of its default route; a host that is
// also a director may have it; without it, no route is asked for.
func TestTunnelMSS(t *testing.T) {
	p, _, diags := Load("test.hcl", []byte(mssPlan("", "\n  tunnel_mss = 1440", "\n  tunnel_mss = 1400")), nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	desired := p.Desired()
	for host, want := range map[string]string{"r": "[{default 1440 false false}]", "b": "[{default 1400 false false}]", "d": "[]"} {
		if got := fmt.Sprint(desired[host].Routes); got != want {
			t.Errorf("%s: routes %s, want %s", host, got, want)
		}
	}
	if r := desired["r"]; len(r.Sysctls) != 4 || len(r.Links) != 1 || r.Empty() {
		t.Errorf("r's state: %+v", r)
	}
	p, _, diags = Load("test.hcl", []byte(mssPlan("", "", "")), nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	for host, st := range p.Desired() {
		if st.Routes != nil {
			t.Errorf("%s: routes %v without tunnel_mss", host, st.Routes)
		}
	}
}

// TestTunnelMSSErrors: tunnel_mss out of range, of the wrong type, or on a host that is not a
// realserver is an error at its place in the file.
func TestTunnelMSSErrors(t *testing.T) {
	cases := []struct {
		name             string
		d, r             string
		summary, detail  string
		line, col, count int
	}{
		{"on a director", "\n  tunnel_mss = 1440", "", "Attribute applies to realservers only",
			`tunnel_mss is the MSS a realserver offers the clients it answers directly; host "d" is not a realserver. Remove it.`, 4, 3, 1},
		{"too small", "", "\n  tunnel_mss = 535", "Invalid tunnel_mss",
			"535 is not valid here: tunnel_mss must be an MSS from 536 to 65495 bytes: the path MTU through the tunnel less 60 (1440 on a 1500-byte path).", 8, 16, 1},
		{"too big", "", "\n  tunnel_mss = 65496", "Invalid tunnel_mss", "65496 is not valid here", 8, 16, 1},
		{"not whole", "", "\n  tunnel_mss = 1440.5", "Invalid tunnel_mss", "1440.5 is not valid here", 8, 16, 1},
		{"a string", "", "\n  tunnel_mss = \"big\"", "Incorrect attribute value type", "", 8, 16, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, diags := Load("test.hcl", []byte(mssPlan(c.d, c.r, "")), nil)
			var errs hcl.Diagnostics
			for _, d := range diags {
				if d.Severity == hcl.DiagError {
					errs = append(errs, d)
				}
			}
			if len(errs) != c.count {
				t.Fatalf("%d errors, want %d: %v", len(errs), c.count, errs)
			}
			d := errs[0]
			if d.Summary != c.summary || !strings.Contains(d.Detail, c.detail) || d.Subject == nil ||
				d.Subject.Filename != "test.hcl" || d.Subject.Start.Line != c.line || d.Subject.Start.Column != c.col {
				t.Errorf("got %s: %q: %q", d.Subject, d.Summary, d.Detail)
			}
		})
	}
	// The bounds themselves are fine.
	for _, v := range []int{MinTunnelMSS, MaxTunnelMSS} {
		if _, _, diags := Load("test.hcl", []byte(mssPlan("", fmt.Sprintf("\n  tunnel_mss = %d", v), "")), nil); diags.HasErrors() {
			t.Errorf("tunnel_mss = %d: %v", v, diags)
		}
	}
}
