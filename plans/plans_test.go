package plans

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/tunplan/tunplan/inventory/target"
	"github.com/tunplan/tunplan/modules/protocol"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestMain runs the tests in a home directory of their own that has an empty ~/.ssh/known_hosts, so
// that plans using the default known_hosts load without a warning whatever the machine has.
func TestMain(m *testing.M) {
	home, err := os.MkdirTemp("", "tunplan-home")
	if err == nil {
		err = os.Mkdir(filepath.Join(home, ".ssh"), 0o700)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(home, ".ssh", "known_hosts"), nil, 0o600)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Setenv("HOME", home)
	os.Setenv("USERPROFILE", home) // os.UserHomeDir on Windows
	code := m.Run()
	os.RemoveAll(home)
	os.Exit(code)
}

// TestDesiredGolden loads each valid plan and compares its desired state to a golden JSON file.
func TestDesiredGolden(t *testing.T) {
	cases := []struct {
		name, path string
		vars       map[string]string
	}{
		{"two_region", "../examples/two-region/tunplan.hcl", nil},
		{"two_region_vars", "../examples/two-region/tunplan.hcl", map[string]string{"vip": "198.18.48.200", "ssh_key": "/k"}},
		{"gue_gre", "../examples/gue-gre/tunplan.hcl", nil},
		{"ipv6", "../examples/ipv6/tunplan.hcl", nil},
		{"fwmark", "../examples/fwmark/tunplan.hcl", nil},
		{"both_roles", "testdata/both_roles.hcl", nil},
		{"functions", "testdata/functions.hcl", map[string]string{"count": "3", "ports": "[80, 8080]", "vip": "198.18.48.99"}},
		{"health_check", "testdata/health_check.hcl", nil},
		{"health_check_example", "../examples/health-check/tunplan.hcl", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustLoad(t, c.path, c.vars)
			got, err := json.MarshalIndent(p.Desired(), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata", c.name+".golden.json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./plans -update to create it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("Desired() differs from %s (rerun with -update if intended)\n--- want\n%s\n--- got\n%s", golden, want, got)
			}
			// Deterministic: a second load renders the same bytes.
			again, _ := json.MarshalIndent(mustLoad(t, c.path, c.vars).Desired(), "", "  ")
			if string(again)+"\n" != string(got) {
				t.Errorf("two loads of %s render differently", c.path)
			}
		})
	}
}

func mustLoad(t *testing.T, path string, vars map[string]string) *Plan {
	t.Helper()
	p, files, diags := LoadFile(path, vars)
	if len(diags) > 0 {
		var b strings.Builder
		_ = hcl.NewDiagnosticTextWriter(&b, files, 100, false).WriteDiagnostics(diags)
		t.Fatalf("%s: unexpected diagnostics:\n%s", path, b.String())
	}
	return p
}

func TestTwoRegionExample(t *testing.T) {
	kh := filepath.Join(t.TempDir(), "known_hosts") // it must exist, or loading warns
	if err := os.WriteFile(kh, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	p := mustLoad(t, "../examples/two-region/tunplan.hcl", map[string]string{"ssh_key": "/lab/key", "known_hosts": kh})
	var got []string
	for _, h := range p.Hosts {
		got = append(got, fmt.Sprintf("%s %s %s %+v", h.Name, h.Roles, h.Address, h.Target()))
	}
	want := []string{
		"beijing realserver 198.18.10.182 {Name:beijing Address:198.19.0.22 Port:22 User:root IdentityFile:[/lab/key] KnownHosts:" + kh + " Sudo:false Jump:<nil>}",
		"lvs01 director 198.18.48.181 {Name:lvs01 Address:198.19.0.11 Port:22 User:root IdentityFile:[/lab/key] KnownHosts:" + kh + " Sudo:false Jump:<nil>}",
		"shanghai realserver 198.18.1.183 {Name:shanghai Address:198.19.0.21 Port:22 User:root IdentityFile:[/lab/key] KnownHosts:" + kh + " Sudo:false Jump:<nil>}",
	}
	if !slices.Equal(got, want) {
		t.Errorf("hosts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The lab's changed-plan test rewrites the first "rr" and the first "weight = 1".
	src, _ := os.ReadFile("../examples/two-region/tunplan.hcl")
	if i, j := strings.Index(string(src), `"rr"`), strings.Index(string(src), `scheduler = "rr"`); i < 0 || i != j+len("scheduler = ") {
		t.Errorf(`the first "rr" in the example must be the scheduler`)
	}
	if !strings.Contains(string(src), "weight = 1") {
		t.Errorf(`the example must contain "weight = 1"`)
	}
}

func TestSSHDefaultsAndOverrides(t *testing.T) {
	p := mustLoad(t, "testdata/both_roles.hcl", nil)
	home, _ := os.UserHomeDir()
	keys := []string{filepath.Join(home, ".ssh/a"), "/etc/tunplan/key"}
	kh := filepath.Join(home, ".ssh/known_hosts")
	want := map[string]target.Target{
		"alpha": {Name: "alpha", Address: "198.18.2.1", Port: 22, User: "deploy", IdentityFile: keys, KnownHosts: kh, Sudo: true},
		"bravo": {Name: "bravo", Address: "bravo.mgmt.example", Port: 2222, User: "deploy", IdentityFile: keys, KnownHosts: kh, Sudo: true,
			Jump: &target.Target{Name: "bravo (jump ops@198.19.9.9:2200)", Address: "198.19.9.9", Port: 2200, User: "ops", IdentityFile: keys, KnownHosts: kh}},
		"charlie": {Name: "charlie", Address: "198.18.2.3", Port: 22, User: "deploy", IdentityFile: keys, KnownHosts: kh, Sudo: true},
	}
	roles := map[string]string{"alpha": "director+realserver", "bravo": "director", "charlie": "realserver"}
	for _, h := range p.Hosts {
		if h.Roles.String() != roles[h.Name] {
			t.Errorf("%s: roles %s, want %s", h.Name, h.Roles, roles[h.Name])
		}
		got, w := h.Target(), want[h.Name]
		gj, wj := got.Jump, w.Jump
		got.Jump, w.Jump = nil, nil
		if fmt.Sprintf("%+v %+v", got, gj) != fmt.Sprintf("%+v %+v", w, wj) {
			t.Errorf("%s:\ngot  %+v %+v\nwant %+v %+v", h.Name, got, got.Jump, w, w.Jump)
		}
	}
}

func TestLargeExample(t *testing.T) {
	p := mustLoad(t, "../examples/large/tunplan.hcl", nil)
	var directors, realservers int
	for _, h := range p.Hosts {
		if h.Has(protocol.Director) {
			directors++
		}
		if h.Has(protocol.Realserver) {
			realservers++
		}
	}
	if directors != 2 || realservers != 100 {
		t.Fatalf("%d directors, %d realservers; want 2 and 100", directors, realservers)
	}
	d := p.Desired()
	if len(d) != 102 {
		t.Fatalf("Desired() has %d hosts, want 102", len(d))
	}
	dests := map[string]int{}
	for _, s := range d["lvs02"].Services {
		dests[fmt.Sprintf("%s/%s:%d %s", s.Protocol, s.Address, s.Port, s.Scheduler)] = len(s.Destinations)
	}
	wantDests := map[string]int{"tcp/198.18.48.180:80 wrr": 100, "tcp/198.18.48.180:443 wlc": 100, "udp/198.18.48.190:53 sh": 50}
	if fmt.Sprint(dests) != fmt.Sprint(wantDests) {
		t.Errorf("lvs02 services %v, want %v", dests, wantDests)
	}
	if n := len(d["lvs01"].Services); n != 2 {
		t.Errorf("lvs01 carries %d services, want 2", n)
	}
	if got := fmt.Sprint(d["lvs02"].Modules); got != "[ip_vs ip_vs_sh ip_vs_wlc ip_vs_wrr ipip]" {
		t.Errorf("lvs02 modules %s", got)
	}
	sh := d["shanghai-07"]
	if len(sh.Links) != 1 || fmt.Sprint(sh.Links[0].Addresses) != "[198.18.48.180/32 198.18.48.190/32]" {
		t.Errorf("shanghai-07 links %+v", sh.Links)
	}
	cd := d["chengdu-20"]
	if len(cd.Links) != 1 || fmt.Sprint(cd.Links[0].Addresses) != "[198.18.48.180/32]" {
		t.Errorf("chengdu-20 links %+v", cd.Links)
	}
	for _, s := range d["lvs01"].Services {
		if s.Port != 80 {
			continue
		}
		for _, dst := range s.Destinations {
			if dst.Address.String() == "198.18.30.30" && dst.Weight != 1 || dst.Address.String() == "198.18.1.11" && dst.Weight != 3 {
				t.Errorf("destination %+v has the wrong region weight", dst)
			}
		}
	}
}

func TestLimit(t *testing.T) {
	p := mustLoad(t, "../examples/two-region/tunplan.hcl", nil)
	full := p.Desired()
	q, diags := p.Limit([]string{"beijing,lvs01"})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	got := q.Desired()
	if len(q.Hosts) != 2 || len(got) != 2 {
		t.Fatalf("limited plan has hosts %v", q.Hosts)
	}
	for name, st := range got {
		a, _ := json.Marshal(st)
		b, _ := json.Marshal(full[name])
		if string(a) != string(b) {
			t.Errorf("%s: limiting changed the desired state:\n%s\n%s", name, a, b)
		}
	}
	if same, _ := p.Limit(nil); same != p {
		t.Errorf("Limit(nil) must select every host")
	}
	_, diags = p.Limit([]string{"beijng", "nosuch"})
	if len(diags) != 2 || !strings.Contains(diags[0].Detail, `did you mean "beijing"?`) || !strings.Contains(diags[1].Summary, `Unknown host "nosuch"`) {
		t.Errorf("diagnostics: %v", diags)
	}
}

// base declares a director d1 and realservers r1, r2 (lines 1-12); service snippets start at line 13.
const base = `host "d1" {
  role    = "director"
  address = "198.18.0.1"
}
host "r1" {
  role    = "realserver"
  address = "198.18.1.1"
}
host "r2" {
  role    = "realserver"
  address = "198.18.1.2"
}
`

func TestInvalidPlans(t *testing.T) {
	cases := []struct {
		name    string
		src     string
		vars    map[string]string
		summary string
		detail  string
		pos     string // line:column of the diagnostic's subject; "" for none
	}{
		{"unknown attribute", "host \"a\" {\n  role   = \"director\"\n  adress = \"198.18.0.1\"\n}\n", nil,
			"Unsupported argument", `"adress" is not expected here. Did you mean "address"?`, "3:3"},
		{"unknown block", base + "services \"web\" {}\n", nil,
			"Unsupported block type", `Blocks of type "services" are not expected here`, "13:1"},
		{"missing address", "host \"a\" {\n  role = \"director\"\n}\n", nil,
			`Missing required attribute "address"`, `needs address = "<IP>", or ["<IPv4>", "<IPv6>"]`, "1:1"},
		{"missing role", base + "host \"x\" {\n  address = \"198.18.3.1\"\n}\n", nil,
			`Missing required attribute "role"`, `role = "director", "realserver"`, "13:1"},
		{"unknown role", base + "host \"x\" {\n  role    = [\"realserver\", \"balancer\"]\n  address = \"198.18.3.1\"\n}\n", nil,
			"Unknown role", `Role "balancer" is not known`, "14:28"},
		{"host with no role", base + "host \"x\" {\n  role    = []\n  address = \"198.18.3.1\"\n}\n", nil,
			"Host has no role", "neither a director nor a realserver", "14:13"},
		{"duplicate host", base + "host \"r1\" {\n  role    = \"realserver\"\n  address = \"198.18.3.1\"\n}\n", nil,
			"Duplicate host", `previously declared at test.hcl:5,1-10`, "13:6"},
		{"duplicate host address", base + "host \"r3\" {\n  role    = \"realserver\"\n  address = \"198.18.1.2\"\n}\n", nil,
			"Duplicate host address", `already the address of host "r2"`, "13:1"},
		{"invalid IP", base + "host \"x\" {\n  role    = \"realserver\"\n  address = \"198.18.1.300\"\n}\n", nil,
			"Invalid IP address", `"198.18.1.300" is not an IP address`, "15:13"},
		{"IPv4-mapped address", base + "host \"x\" {\n  role    = \"realserver\"\n  address = \"::ffff:198.18.3.1\"\n}\n", nil,
			"Invalid IP address", "write it as the IPv4 address 198.18.3.1", "15:13"},
		{"vip_device on a realserver", base + "host \"x\" {\n  role       = \"realserver\"\n  address    = \"198.18.3.1\"\n  vip_device = \"lo\"\n}\n", nil,
			"Attribute applies to directors only", "realservers always use tunl0", "16:3"},
		{"metrics_file on a realserver", base + "host \"x\" {\n  role         = \"realserver\"\n  address      = \"198.18.3.1\"\n  metrics_file = \"\"\n}\n", nil,
			"Attribute applies to directors only", "Prometheus text file", "16:3"},
		{"metrics_file not .prom", base + "host \"x\" {\n  role         = \"director\"\n  address      = \"198.18.3.1\"\n  metrics_file = \"/var/lib/tunplan.txt\"\n}\n", nil,
			"Invalid metrics file", `not an absolute path ending in ".prom"`, "16:18"},
		{"hide_vip on a director", base + "host \"x\" {\n  role     = \"director\"\n  address  = \"198.18.3.1\"\n  hide_vip = false\n}\n", nil,
			"Attribute applies to realservers only", "not a realserver", "16:3"},
		{"jump port", base + "ssh {\n  jump = \"ops@bastion:99999\"\n}\n", nil,
			"Invalid jump host", `jump "ops@bastion:99999": invalid port "99999". Write jump = "[user@]host[:port]"`, "14:10"},
		{"jump without a host", base + "ssh {\n  jump = \"ops@\"\n}\n", nil,
			"Invalid jump host", `jump "ops@": no host.`, "14:10"},
		{"ssh port", base + "ssh {\n  port = 0\n}\n", nil,
			"Invalid SSH port", "port must be a TCP port from 1 to 65535", "14:10"},
		{"missing vip", base + "virtual_service \"web\" {\n  port = 80\n  directors = [\"d1\"]\n  realserver \"r1\" {}\n}\n", nil,
			`Missing required attribute "vip"`, "the virtual address clients connect to", "13:1"},
		{"IPv6 VIP, IPv4 realservers", base + svc(`vip = "2001:2::80"`), nil,
			"Realserver has no IPv6 address", `realserver "r1" has only the IPv4 address 198.18.1.1`, "17:14"},
		{"VIP is a data address", base + svc(`vip = "198.18.1.2"`), nil,
			"VIP is a host address", `data-plane address of host "r2"`, "14:9"},
		{"VIP is an SSH address", "host \"d9\" {\n  role    = \"director\"\n  address = \"198.18.0.9\"\n  ssh {\n    host = \"198.19.0.9\"\n  }\n}\n" + base + svc(`vip = "198.19.0.9"`), nil,
			"VIP is a host address", `SSH address of host "d9"`, "21:9"},
		{"duplicate service", base + svc() + strings.Replace(svc(), `"web"`, `"web2"`, 1), nil,
			"Duplicate virtual service", "tcp/198.18.48.10:80 was previously declared at test.hcl:13,1-22", "19:1"},
		{"unknown protocol", base + svc(`protocol = "sctp"`), nil,
			"Unknown protocol", `use "tcp" or "udp"`, "18:14"},
		{"unknown scheduler", base + svc(`scheduler = "roundrobin"`), nil,
			"Unknown scheduler", "Valid schedulers: rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, mh, fo, ovf", "18:15"},
		{"port 0", base + svc(`port = 0`), nil,
			"Invalid port", "port must be a port from 1 to 65535", "15:10"},
		{"port too big", base + svc(`port = 65536`), nil,
			"Invalid port", "65536 is not valid here", "15:10"},
		{"negative persistence", base + svc(`persistence = -1`), nil,
			"Invalid persistence", "0 (not persistent) or more", "18:17"},
		{"no directors", base + svc(`directors = []`), nil,
			"Service has no directors", "at least one director", "16:15"},
		{"missing directors", base + "virtual_service \"web\" {\n  vip  = \"198.18.48.10\"\n  port = 80\n  realserver \"r1\" {}\n}\n", nil,
			`Missing required attribute "directors"`, `directors = ["<host>", …]`, "13:1"},
		{"no realservers", base + "virtual_service \"web\" {\n  vip       = \"198.18.48.10\"\n  port      = 80\n  directors = [\"d1\"]\n}\n", nil,
			"Service has no realservers", `add at least one realserver "<host>"`, "13:1"},
		{"unknown director", base + svc(`directors = ["d1", "d2"]`), nil,
			"Unknown host", `names director "d2", but there is no host "d2" (did you mean "d1"?)`, "16:22"},
		{"director is not a director", base + svc(`directors = ["r2"]`), nil,
			"Host is not a director", `its role is "realserver"`, "16:16"},
		{"duplicate director", base + svc(`directors = ["d1", "d1"]`), nil,
			"Duplicate director", "listed twice", "16:22"},
		{"unknown realserver", base + svc(`realserver "r3" {}`), nil,
			"Unknown host", `names realserver "r3", but there is no host "r3"`, "18:14"},
		{"realserver is a director", base + svc(`realserver "d1" {}`), nil,
			"Host is not a realserver", `Add "realserver" to its role`, "18:14"},
		{"duplicate realserver", base + svc(`realserver "r1" {}`), nil,
			"Duplicate realserver", "previously declared in this service at test.hcl:17,3-18", "18:14"},
		{"realserver port differs", base + svc("realserver \"r2\" {\n    port = 8080\n  }"), nil,
			"Realserver port differs from the service port", "tunnel mode cannot map ports. Remove port, or set it to 80", "19:12"},
		{"weight too big", base + svc("realserver \"r2\" {\n    weight = 70000\n  }"), nil,
			"Invalid weight", "from 0 to 65535", "19:14"},
		{"weight negative", base + svc("realserver \"r2\" {\n    weight = -1\n  }"), nil,
			"Invalid weight", "-1 is not valid here", "19:14"},
		{"weight not whole", base + svc("realserver \"r2\" {\n    weight = 1.5\n  }"), nil,
			"Invalid weight", "1.5 is not valid here", "19:14"},
		{"weight not a number", base + svc("realserver \"r2\" {\n    weight = \"heavy\"\n  }"), nil,
			"Incorrect attribute value type", "number required", "19:14"},
		{"dynamic realserver naming unknown host", base + svc("dynamic \"realserver\" {\n    for_each = [\"r2\", \"r9\"]\n    labels   = [realserver.value]\n    content {}\n  }"), nil,
			"Unknown host", `no host "r9"`, "20:17"},
		{"undefined local", base + svc(`vip = local.vip`), nil,
			"Unsupported attribute", `This object does not have an attribute named "vip"`, "14:14"},
		{"local cycle", base + "locals {\n  a = local.b\n  b = local.a\n}\n", nil,
			"Cycle in local values", "local.a depends on itself", "14:7"},
		{"required variable", base + "variable \"vip\" {}\n" + svc(`vip = var.vip`), nil,
			"No value for required variable", "--var vip=VALUE", "13:1"},
		{"undeclared --var", base + svc(), map[string]string{"vipp": "198.18.48.11"},
			"Undeclared variable", `--var vipp was given, but the plan has no variable "vipp"`, ""},
		{"--var of the wrong type", base + "variable \"port\" {\n  default = 80\n}\n" + svc(`port = var.port`), map[string]string{"port": "http"},
			"Invalid value for variable", "the default of \"port\" is a number", "13:1"},
		{"no hosts", svc(), nil,
			"No hosts", "Add a host block for each, e.g.\n\n  host \"lvs01\" {\n    role    = \"director\"", "1:1"},
		{"no virtual services", base, nil,
			"No virtual services", "directors = [\"d1\"]\n    realserver \"r1\" {}\n  }", "1:1"},
		{"empty plan", "", nil,
			"No hosts", "tunplan needs at least one director and one realserver", "1:1"},
		{"undeclared variable", base + "variable \"vip\" {\n  default = \"198.18.48.10\"\n}\n" + svc(`vip = var.vipp`), nil,
			"Undeclared variable", `no variable "vipp" is declared; did you mean "vip"?`, "17:9"},
		{"undeclared variable, none close", base + svc(`vip = var.vip`), nil,
			"Undeclared variable", `no variable "vip" is declared; declare it with variable "vip" { default = … }`, "14:9"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantError(t, c.src, c.vars, c.summary, c.detail, c.pos) })
	}
}

// wantError loads src and fails the test unless it is refused with an error diagnostic whose
// summary is summary, whose detail contains detail, at pos (line:column; "" for none).
func wantError(t *testing.T, src string, vars map[string]string, summary, detail, pos string) {
	t.Helper()
	p, _, diags := Load("test.hcl", []byte(src), vars)
	if p != nil {
		t.Errorf("Load returned a plan despite errors")
	}
	if !diags.HasErrors() {
		t.Fatalf("no error; want %q", summary)
	}
	var all []string
	for _, d := range diags {
		at := ""
		if d.Subject != nil {
			at = fmt.Sprintf("%d:%d", d.Subject.Start.Line, d.Subject.Start.Column)
		}
		if d.Severity == hcl.DiagError && d.Summary == summary && strings.Contains(d.Detail, detail) && at == pos {
			return
		}
		all = append(all, fmt.Sprintf("%s: %s; %s", d.Subject, d.Summary, d.Detail))
	}
	t.Errorf("want an error %q / %q at %s; got:\n%s", summary, detail, pos, strings.Join(all, "\n"))
}

// svc is a valid virtual_service "web" on d1 → r1 (lines 13-18 after base), with lines that replace
// the attribute of the same name or, when new, are added after realserver "r1".
func svc(lines ...string) string {
	body := []string{`vip       = "198.18.48.10"`, `port      = 80`, `directors = ["d1"]`, `realserver "r1" {}`}
	for _, l := range lines {
		name := strings.Fields(l)[0]
		i := slices.IndexFunc(body, func(b string) bool { return strings.Fields(b)[0] == name && !strings.HasPrefix(l, "realserver") })
		if i >= 0 {
			body[i] = l
		} else {
			body = append(body, l)
		}
	}
	return "virtual_service \"web\" {\n  " + strings.Join(body, "\n  ") + "\n}\n"
}

// TestAllProblemsAreReported: validation does not stop at the first error.
func TestAllProblemsAreReported(t *testing.T) {
	src := base + svc(`scheduler = "nope"`, `protocol = "icmp"`, "realserver \"r2\" {\n    weight = 70000\n  }", `realserver "r7" {}`)
	_, _, diags := Load("test.hcl", []byte(src), nil)
	var got []string
	for _, d := range diags {
		got = append(got, d.Summary)
	}
	slices.Sort(got)
	want := []string{"Invalid weight", "Unknown host", "Unknown protocol", "Unknown scheduler"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestUnusedHostWarns(t *testing.T) {
	p, _, diags := Load("test.hcl", []byte(base+svc()), nil)
	if p == nil || diags.HasErrors() || len(diags) != 1 || diags[0].Severity != hcl.DiagWarning || !strings.Contains(diags[0].Detail, `Host "r2" is a realserver but no virtual_service uses it`) {
		t.Fatalf("want one warning about r2, got %v", diags)
	}
	if st := p.Desired()["r2"]; len(st.Modules)+len(st.Links)+len(st.Sysctls)+len(st.Services) != 0 {
		t.Errorf("unused realserver r2 should have an empty desired state, got %+v", st)
	}
}

func TestCIDRFunctions(t *testing.T) {
	src := `locals {
  a = cidrhost("198.18.4.0/24", 5)
  b = cidrhost("198.18.4.0/24", -1)
  c = cidrsubnet("198.18.0.0/16", 8, 7)
}
host "d" {
  role    = "director"
  address = local.a
}
host "r" {
  role    = "realserver"
  address = local.b
}
virtual_service "s" {
  vip       = cidrhost(local.c, 1)
  port      = 80
  directors = ["d"]
  realserver "r" {}
}
`
	p, _, diags := Load("test.hcl", []byte(src), nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	got := fmt.Sprint(p.Hosts[0].Address, p.Hosts[1].Address, p.Services[0].VIP)
	if got != "198.18.4.5 198.18.4.255 198.18.7.1" {
		t.Errorf("got %s", got)
	}
	_, _, diags = Load("test.hcl", []byte(strings.Replace(src, "-1)", "256)", 1)), nil)
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "has no host number 256") {
		t.Errorf("cidrhost out of range: %v", diags)
	}
}

// TestReadmeExamples loads every hcl block of README.md that declares a host.
func TestReadmeExamples(t *testing.T) {
	src, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, part := range strings.Split(string(src), "```hcl\n")[1:] {
		block, _, _ := strings.Cut(part, "```")
		if !strings.Contains(block, "host \"") && !strings.Contains(block, "dynamic \"host\"") {
			continue
		}
		full := block
		if !strings.Contains(block, `role    = "director"`) {
			full += "host \"lvs01\" {\n  role    = \"director\"\n  address = \"198.18.48.181\"\n}\n"
		}
		p, _, diags := Load(fmt.Sprintf("README.md block %d", i+1), []byte(full), nil)
		if p == nil || diags.HasErrors() {
			t.Errorf("README block %d: %v", i+1, diags)
		}
		n++
	}
	if n != 2 {
		t.Errorf("checked %d README blocks, want 2", n)
	}
}
