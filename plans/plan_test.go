package plans

import (
	"strings"
	"testing"

	"github.com/tunplan/tunplan/modules/protocol"
)

// TestLimitSelectors: --hosts takes host names, globs and roles, in any mix; the hosts come out
// sorted and once each; a selector that selects nothing is an error.
func TestLimitSelectors(t *testing.T) {
	p := mustLoad(t, "../examples/large/tunplan.hcl", nil)
	cases := []struct {
		name    string
		names   []string
		want    string // selected hosts, comma-separated; or, with n, the first and last of them
		n       int
		summary string // of the first error; "" for none
		detail  string
	}{
		{"names", []string{"shanghai-02", "lvs01"}, "lvs01,shanghai-02", 0, "", ""},
		{"glob", []string{"shanghai-*"}, "shanghai-01,shanghai-25", 25, "", ""},
		{"glob with ? and a class", []string{"lvs0?", "beijing-0[1-3]"}, "beijing-01,beijing-02,beijing-03,lvs01,lvs02", 0, "", ""},
		{"role director", []string{"role:director"}, "lvs01,lvs02", 0, "", ""},
		{"role realserver", []string{"role:realserver"}, "beijing-01,shanghai-25", 100, "", ""},
		{"mixed in one list", []string{"role:director, chengdu-2*,guangzhou-30"}, "chengdu-20,guangzhou-30,lvs01,lvs02", 0, "", ""},
		{"overlaps once each", []string{"lvs01,role:director", "lvs*", "lvs02"}, "lvs01,lvs02", 0, "", ""},
		{"glob that selects nothing", []string{"hangzhou-*"}, "", 0,
			`No host matches "hangzhou-*"`, `The pattern "hangzhou-*" selects none of the plan's hosts: beijing-01, beijing-02,`},
		{"invalid glob", []string{"shanghai-[0"}, "", 0,
			`Invalid host pattern "shanghai-[0"`, `"shanghai-[0" is not a valid pattern (syntax error in pattern): use * for any characters`},
		{"unknown role", []string{"role:directors"}, "", 0,
			`Unknown role "directors"`, `"role:directors" selects the hosts of a role, but "directors" is not one (did you mean "director"?): the roles are "director" and "realserver" (select them with role:director or role:realserver).`},
		{"empty role", []string{"role:"}, "", 0,
			`Unknown role ""`, `the roles are "director" and "realserver"`},
		{"unknown name among good selectors", []string{"role:director,shanghai-*,lvs03"}, "", 0,
			`Unknown host "lvs03"`, `The plan has no host "lvs03" (did you mean "lvs01"?)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, diags := p.Limit(c.names)
			if c.summary != "" {
				if q != nil || !diags.HasErrors() {
					t.Fatalf("no error; want %q", c.summary)
				}
				if diags[0].Summary != c.summary || !strings.Contains(diags[0].Detail, c.detail) {
					t.Errorf("got %q: %q\nwant %q: %q", diags[0].Summary, diags[0].Detail, c.summary, c.detail)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			var got []string
			for i, h := range q.Hosts {
				if i > 0 && q.Hosts[i-1].Name >= h.Name {
					t.Errorf("hosts not sorted or repeated: %s after %s", h.Name, q.Hosts[i-1].Name)
				}
				got = append(got, h.Name)
			}
			if c.n > 0 {
				if len(got) != c.n {
					t.Fatalf("%d hosts, want %d: %v", len(got), c.n, got)
				}
				got = []string{got[0], got[len(got)-1]}
			}
			if strings.Join(got, ",") != c.want {
				t.Errorf("got %s, want %s", strings.Join(got, ","), c.want)
			}
			if len(q.Services) != len(p.Services) || len(q.Desired()) != len(q.Hosts) {
				t.Errorf("a limited plan keeps every service and gives a state for each selected host")
			}
		})
	}
}

// TestLimitRoleOfNoHost: a role no host has is an error (a loaded plan always has both roles).
func TestLimitRoleOfNoHost(t *testing.T) {
	h := Host{Name: "r1", Roles: protocol.Roles{protocol.Realserver}}
	p := &Plan{Hosts: []Host{h}, all: map[string]Host{"r1": h}}
	q, diags := p.Limit([]string{"role:director"})
	if q != nil || len(diags) != 1 || diags[0].Summary != `No host has role "director"` || diags[0].Detail != `"role:director" selects no host: no host of the plan is a director. Its hosts are: r1.` {
		t.Errorf("got %v", diags)
	}
	if q, diags := p.Limit([]string{"role:realserver"}); diags.HasErrors() || len(q.Hosts) != 1 {
		t.Errorf("role:realserver: %v", diags)
	}
}

// hide_vip = false leaves a realserver's ARP sysctls alone (a realserver on another L2 than the
// VIP's, or one set up by hand without them); rp_filter is still set, since the tunnel needs it.
func TestHideVIP(t *testing.T) {
	src := `host "d" {
  role    = "director"
  address = "198.18.0.1"
}
host "r" {
  role     = "realserver"
  address  = "198.18.1.1"
  hide_vip = false
}
virtual_service "web" {
  vip       = "198.18.0.100"
  port      = 80
  directors = ["d"]
  realserver "r" {}
}
`
	for _, c := range []struct {
		src  string
		want string
	}{
		{src, "net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.tunl0.rp_filter=0"},
		{strings.Replace(src, "  hide_vip = false\n", "", 1), "net.ipv4.conf.all.arp_announce=2 net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.tunl0.rp_filter=0"},
	} {
		p, _, diags := Load("test.hcl", []byte(c.src), nil)
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		var got []string
		for _, s := range p.Desired()["r"].Sysctls {
			got = append(got, s.Key+"="+s.Value)
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("sysctls %v, want %s", got, c.want)
		}
	}
}
