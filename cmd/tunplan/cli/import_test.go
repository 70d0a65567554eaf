package cli

import (
	"bufio"
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode"

	"github.com/tunplan/tunplan/inventory/fleet"
	"github.com/tunplan/tunplan/inventory/target"
	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/protocol"
	"github.com/tunplan/tunplan/plans"
)

// inventoryHosts stands in for the SSH transport for import: each host (by SSH address) answers
// inspect with its inventory and diff with its changes; every target dialled and request made is
// recorded.
type inventoryHosts struct {
	mu      sync.Mutex
	inv     map[string]*protocol.Inventory // by SSH address
	changes map[string][]change.Change     // what diff reports, by plan name
	fail    map[string]error               // SSH addresses that cannot be reached
	errs    map[string]string              // what inspect answers as its error, by SSH address
	targets map[string]target.Target       // by plan name
	calls   []string                       // "name op"
	desired map[string]protocol.State      // what each diff asked for, by plan name
}

func (f *inventoryHosts) connect(t target.Target) (fleet.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.targets == nil {
		f.targets, f.desired = map[string]target.Target{}, map[string]protocol.State{}
	}
	f.targets[t.Name] = t
	if err := f.fail[t.Address]; err != nil {
		return nil, err
	}
	return inventorySession{f, t}, nil
}

type inventorySession struct {
	f *inventoryHosts
	t target.Target
}

func (s inventorySession) Close() error { return nil }

func (s inventorySession) Run(req protocol.Request) (protocol.Response, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.calls = append(s.f.calls, s.t.Name+" "+string(req.Op))
	switch req.Op {
	case protocol.OpInspect:
		inv := s.f.inv[s.t.Address]
		if e := s.f.errs[s.t.Address]; e != "" {
			return protocol.Response{Host: req.Host, Error: e}, nil
		}
		if inv == nil {
			return protocol.Response{Host: req.Host, Error: "no such host in the test"}, nil
		}
		return protocol.Response{Host: req.Host, Inventory: inv}, nil
	case protocol.OpDiff:
		s.f.desired[req.Host] = req.Desired
		return protocol.Response{Host: req.Host, Changes: s.f.changes[req.Host]}, nil
	}
	return protocol.Response{}, errors.New("import sent " + string(req.Op))
}

func runImport(t *testing.T, f *inventoryHosts, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	io := &IOStreams{In: bufio.NewReader(strings.NewReader("")), Out: &out, ErrOut: &errOut}
	code := run(io, f.connect, nil, append([]string{"import"}, args...))
	return out.String(), errOut.String(), code
}

var (
	ipAddr   = netip.MustParseAddr
	ipPrefix = netip.MustParsePrefix
)

func tunDest(ip string, port uint16, w uint32) protocol.Destination {
	return protocol.Destination{Address: ipAddr(ip), Port: port, Weight: w, Forward: protocol.ForwardTunnel}
}

// Two directors and three realservers, read from their kernels: a weighted TCP service on both
// directors, a persistent UDP service on one, a destination no given realserver has, a realserver
// that lacks a VIP on tunl0, one that no service uses, and services import must leave out.
func twoDirectors() *inventoryHosts {
	web := protocol.Service{Protocol: "tcp", Address: ipAddr("198.18.48.180"), Port: 80, Scheduler: "wrr", Destinations: []protocol.Destination{
		tunDest("198.18.1.183", 80, 3), tunDest("198.18.10.182", 80, 1), tunDest("198.18.20.5", 80, 0),
	}}
	dns := protocol.Service{Protocol: "udp", Address: ipAddr("198.18.48.190"), Port: 53, Scheduler: "sh", Persistence: 300, Destinations: []protocol.Destination{
		tunDest("198.18.1.183", 53, 1), tunDest("198.18.10.182", 53, 2),
	}}
	mapped := protocol.Service{Protocol: "tcp", Address: ipAddr("198.18.48.200"), Port: 8080, Scheduler: "rr", Destinations: []protocol.Destination{tunDest("198.18.1.183", 80, 1)}}
	return &inventoryHosts{inv: map[string]*protocol.Inventory{
		"198.19.0.11": {
			Services:        []protocol.Service{web, dns, mapped},
			Skipped:         []string{"fwmark 3: a firewall-mark service; tunplan manages TCP and UDP services on an IPv4 VIP"},
			TunnelAddresses: []netip.Prefix{ipPrefix("198.18.48.180/32"), ipPrefix("198.18.48.190/32")},
			Addresses:       []netip.Addr{ipAddr("198.19.0.11"), ipAddr("198.18.48.181")},
		},
		"lvs02.example.com": {
			Services:        []protocol.Service{web},
			TunnelAddresses: []netip.Prefix{ipPrefix("198.18.48.180/32")},
			Addresses:       []netip.Addr{ipAddr("198.18.48.180"), ipAddr("198.19.0.12"), ipAddr("198.18.48.182")},
		},
		"198.19.0.21": {
			TunnelAddresses: []netip.Prefix{ipPrefix("198.18.48.180/32"), ipPrefix("198.18.48.190/32")},
			Addresses:       []netip.Addr{ipAddr("198.19.0.21"), ipAddr("198.18.1.183")},
		},
		"198.18.10.182": {
			TunnelAddresses: []netip.Prefix{ipPrefix("198.18.48.180/32")}, // lacks the DNS VIP
			Addresses:       []netip.Addr{ipAddr("198.18.10.182")},
		},
		"198.19.0.23": {Addresses: []netip.Addr{ipAddr("198.19.0.23"), ipAddr("198.18.1.99")}},
	}}
}

var twoDirectorArgs = []string{"--director", "198.19.0.11,lvs02.example.com", "--realserver", "198.19.0.21,beijing=198.18.10.182", "--realserver", "198.19.0.23"}

func TestImportTwoDirectors(t *testing.T) {
	f := twoDirectors()
	f.changes = map[string][]change.Change{
		"realserver-1": {{Module: "sysctl", Address: "sysctl net.ipv4.conf.all.arp_ignore", Action: change.Update, Before: "0", After: "1"}},
		"director-1":   {{Module: "sysctl", Address: "sysctl net.ipv4.ip_forward", Action: change.Update, Before: "0", After: "1"}},
	}
	out := filepath.Join(t.TempDir(), "imported.hcl")
	stdout, stderr, code := runImport(t, f, append(twoDirectorArgs, "-o", out)...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if stdout != "" {
		t.Errorf("with -o, stdout is %q", stdout)
	}
	src, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "import_two_directors.hcl", string(src))
	if fmtOut, _, code := runCLI(t, &fakeHosts{}, "", "fmt", "--check", out); code != exitOK {
		t.Errorf("the imported plan is not formatted: exit %d %s", code, fmtOut)
	}
	if vOut, vErr, code := runCLI(t, &fakeHosts{}, "", "validate", "-f", out); code != exitOK || vErr != "" {
		t.Errorf("validate: exit %d\n%s%s", code, vOut, vErr)
	}

	// The plan loads without a diagnostic, and asks each director for exactly what it carries.
	p, _, diags := plans.LoadFile(out, nil)
	if len(diags) > 0 {
		t.Fatalf("the imported plan has diagnostics: %v", diags)
	}
	inv := f.inv
	desired := p.Desired()
	dirServices := map[string][]protocol.Service{
		"director-1": inv["198.19.0.11"].Services[:2], // the mapped-port service is left out
		"lvs02":      inv["lvs02.example.com"].Services,
	}
	for name, want := range dirServices {
		got := desired[name].Services
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the plan asks for\n%+v\nthe director has\n%+v", name, got, want)
		}
	}
	// Realservers: their RIPs, and the VIPs of the services that use them.
	rips := map[string]string{"realserver-1": "198.18.1.183", "beijing": "198.18.10.182", "rs-198-18-20-5": "198.18.20.5"}
	for _, h := range p.Hosts {
		if r, ok := rips[h.Name]; ok && (h.Address != ipAddr(r) || !h.Has(protocol.Realserver)) {
			t.Errorf("%s: address %s roles %v, want realserver %s", h.Name, h.Address, h.Roles, r)
		}
	}
	if l := desired["beijing"].Links; len(l) != 1 || !reflect.DeepEqual(l[0].Addresses, []netip.Prefix{ipPrefix("198.18.48.180/32"), ipPrefix("198.18.48.190/32")}) {
		t.Errorf("beijing's tunl0: %+v", l)
	}
	if _, ok := desired["realserver-3"]; ok {
		t.Error("the unused realserver is in the plan")
	}

	for _, want := range []string{
		"! director-1: skipped fwmark 3: a firewall-mark service; tunplan manages TCP and UDP services on an IPv4 VIP\n",
		"! director-1: skipped tcp/198.18.48.200:8080: destination 198.18.1.183:80 has port 80; in tunnel mode the realserver receives the service port 8080, so a plan cannot map ports\n",
		"! rs-198-18-20-5: destination 198.18.20.5 is no address of the hosts read: the plan reaches it over SSH at that address",
		"! realserver-3: left out of the plan: no imported service tunnels to it",
		"! beijing: has no 198.18.48.190/32 on tunl0, which virtual_service \"udp-53\" needs there: applying the plan adds it\n",
		"Wrote " + out + ": 2 directors, 3 realservers, 2 virtual services.\n",
		"! director-1: net.ipv4.ip_forward is 0 there: the plan says ip_forward = false, so tunplan leaves it alone",
		"! realserver-1: arp_ignore and arp_announce are not set to hide the VIPs there: the plan says hide_vip = false, so tunplan leaves them alone\n",
		"Applying it changes nothing on the 4 hosts read.\n",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "lvs02: has no") || strings.Contains(stderr, "Error") || strings.Contains(stderr, "~ sysctl net.ipv4.ip_forward") {
		t.Errorf("stderr:\n%s", stderr)
	}

	// Every host given was read once; the check diffs only the hosts of the plan, each with the
	// state the plan asks of it; nothing was applied.
	slices.Sort(f.calls)
	want := []string{"beijing diff", "beijing inspect", "director-1 diff", "director-1 inspect", "lvs02 diff", "lvs02 inspect",
		"realserver-1 diff", "realserver-1 inspect", "realserver-3 inspect"}
	if !reflect.DeepEqual(f.calls, want) {
		t.Errorf("calls %v\nwant %v", f.calls, want)
	}
	// director-1's forwarding is off and realserver-1's ARP settings are stock: the plan leaves
	// them so (ip_forward = false, hide_vip = false, in the golden file), and the check diffed the
	// plan that would have changed them.
	if st := f.desired["director-1"]; len(st.Sysctls) != 1 || st.Sysctls[0] != (protocol.Sysctl{Key: "net.ipv4.ip_forward", Value: "1"}) || desired["director-1"].Sysctls != nil {
		t.Errorf("director-1: diffed sysctls %v, the plan's %v", st.Sysctls, desired["director-1"].Sysctls)
	}
	if st := f.desired["realserver-1"]; len(st.Sysctls) != 4 || len(desired["realserver-1"].Sysctls) != 2 {
		t.Errorf("realserver-1: diffed sysctls %v, the plan's %v", st.Sysctls, desired["realserver-1"].Sysctls)
	}
	for name, st := range f.desired {
		switch name {
		case "director-1":
			st.Sysctls = nil
		case "realserver-1":
			st.Sysctls = desired[name].Sysctls
		}
		if !reflect.DeepEqual(st, desired[name]) {
			t.Errorf("%s: diffed against %+v, the plan asks %+v", name, st, desired[name])
		}
	}
}

// Without -o the plan goes to stdout, and the SSH flags reach both the connection and the plan.
func TestImportToStdoutWithSSHFlags(t *testing.T) {
	f := twoDirectors()
	stdout, stderr, code := runImport(t, f, "--director", "lvs01=198.19.0.11", "--realserver", "198.19.0.21,198.18.10.182",
		"--user", "deploy", "--port", "2222", "--identity-file", "/keys/a", "--identity-file", "/keys/b",
		"--known-hosts", "/lab/known_hosts", "--sudo", "--jump", "ops@bastion:2200")
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, want := range []string{
		"ssh {\n  user          = \"deploy\"\n  port          = 2222\n  identity_file = [\"/keys/a\", \"/keys/b\"]\n  known_hosts   = \"/lab/known_hosts\"\n  sudo          = true\n  jump          = \"ops@bastion:2200\"\n}\n",
		"host \"lvs01\" {\n  role    = \"director\"\n  address = \"198.19.0.11\"\n}\n",
		"host \"realserver-2\" {\n  role    = \"realserver\"\n  address = \"198.18.10.182\"\n}\n",
		"directors = [\"lvs01\"]",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("plan lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "Applying it changes nothing on the 3 hosts read.") {
		t.Errorf("stderr:\n%s", stderr)
	}
	got := f.targets["lvs01"]
	want := target.Target{Name: "lvs01", Address: "198.19.0.11", Port: 2222, User: "deploy", IdentityFile: []string{"/keys/a", "/keys/b"},
		KnownHosts: "/lab/known_hosts", Sudo: true,
		Jump: &target.Target{Name: "lvs01 (jump ops@bastion:2200)", Address: "bastion", Port: 2200, User: "ops", IdentityFile: []string{"/keys/a", "/keys/b"}, KnownHosts: "/lab/known_hosts"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("target %+v (jump %+v)\nwant %+v (jump %+v)", got, got.Jump, want, want.Jump)
	}

	// The plan it wrote makes the same targets.
	path := filepath.Join(t.TempDir(), "p.hcl")
	os.WriteFile(path, []byte(stdout), 0o644)
	p, _, diags := plans.LoadFile(path, nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	for _, h := range p.Hosts {
		if h.Name == "lvs01" && !reflect.DeepEqual(h.Target(), want) {
			t.Errorf("plan's target %+v (jump %+v)\nwant %+v", h.Target(), h.Target().Jump, want)
		}
	}
}

func TestImportDirectorsDisagree(t *testing.T) {
	f := twoDirectors()
	other := f.inv["lvs02.example.com"].Services[0]
	other.Scheduler = "rr"
	other.Destinations = other.Destinations[:2]
	f.inv["lvs02.example.com"].Services = []protocol.Service{other}
	out := filepath.Join(t.TempDir(), "imported.hcl")
	_, stderr, code := runImport(t, f, append(twoDirectorArgs, "-o", out)...)
	want := "Error: service tcp/198.18.48.180:80 differs between directors director-1 and lvs02 (scheduler wrr vs rr; destinations [198.18.1.183:80 weight 3, 198.18.10.182:80 weight 1, 198.18.20.5:80 weight 0] vs [198.18.1.183:80 weight 3, 198.18.10.182:80 weight 1])"
	if code != exitError || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stderr:\n%s\nwant %q", code, stderr, want)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a plan was written: %v", err)
	}
}

func TestImportFailures(t *testing.T) {
	cases := []struct {
		name string
		f    func(*inventoryHosts)
		args []string
		want string
	}{
		{"unreachable host", func(f *inventoryHosts) {
			f.fail = map[string]error{"198.19.0.21": errors.New("host realserver-1: connect 198.19.0.21:22: connection refused")}
		}, twoDirectorArgs, "Error: host realserver-1: connect 198.19.0.21:22: connection refused"},
		{"helper error", func(f *inventoryHosts) { delete(f.inv, "198.19.0.23") }, twoDirectorArgs, "Error: host realserver-3: no such host in the test"},
		{"nothing to import", func(f *inventoryHosts) {}, []string{"--director", "198.19.0.21"}, "Error: nothing to import: no director carries"},
		{"no director", func(f *inventoryHosts) {}, []string{"--realserver", "198.19.0.21"}, "Error: --director: name at least one director"},
		{"bad name", func(f *inventoryHosts) {}, []string{"--director", "1lvs=198.19.0.11"}, `"1lvs" is not a valid host name`},
		{"same host twice", func(f *inventoryHosts) {}, []string{"--director", "198.19.0.11", "--director", "198.19.0.11"}, "198.19.0.11 is given twice"},
		{"same name twice", func(f *inventoryHosts) {}, []string{"--director", "a=198.19.0.11,a=198.19.0.12"}, `two hosts are named "a"`},
		{"bad jump", func(f *inventoryHosts) {}, []string{"--director", "198.19.0.11", "--jump", "ops@bastion:99999"}, `--jump "ops@bastion:99999": invalid port`},
		{"two addresses of one realserver", func(f *inventoryHosts) {
			s := &f.inv["198.19.0.11"].Services[1]
			s.Destinations[0].Address = ipAddr("198.19.0.21") // realserver-1's other address
		}, twoDirectorArgs, "host realserver-1 is the destination of both"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := twoDirectors()
			c.f(f)
			stdout, stderr, code := runImport(t, f, c.args...)
			if code != exitError || !strings.Contains(stderr, c.want) || stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant %q", code, stdout, stderr, c.want)
			}
			for _, call := range f.calls {
				if !strings.HasSuffix(call, " inspect") {
					t.Errorf("a failed import sent %q", call)
				}
			}
		})
	}
}

// A director that is also a realserver (a destination is one of its addresses) is one host with
// both roles, at that address; VIPs that are a host's SSH address are left out.
func TestImportDirectorAlsoRealserver(t *testing.T) {
	f := &inventoryHosts{inv: map[string]*protocol.Inventory{
		"lvs01.example.com": {
			Services: []protocol.Service{
				{Protocol: "tcp", Address: ipAddr("198.18.48.180"), Port: 443, Scheduler: "wlc", Destinations: []protocol.Destination{tunDest("198.18.48.181", 443, 1), tunDest("198.18.1.5", 443, 1)}},
				{Protocol: "tcp", Address: ipAddr("198.19.0.21"), Port: 80, Scheduler: "rr", Destinations: []protocol.Destination{tunDest("198.18.1.5", 80, 1)}},
			},
			TunnelAddresses: []netip.Prefix{ipPrefix("198.18.48.180/32")},
			Addresses:       []netip.Addr{ipAddr("198.19.0.11"), ipAddr("198.18.48.181")},
		},
		"198.19.0.21": {Addresses: []netip.Addr{ipAddr("198.19.0.21")}},
	}}
	stdout, stderr, code := runImport(t, f, "--director", "lvs01.example.com", "--realserver", "198.19.0.21")
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, want := range []string{
		"host \"lvs01\" {\n  role    = [\"director\", \"realserver\"]\n  address = \"198.18.48.181\"\n  ssh {\n    host = \"lvs01.example.com\"\n  }\n}\n",
		"virtual_service \"tcp-443\" {",
		"realserver \"lvs01\" {}",
		"realserver \"rs-198-18-1-5\" {}",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("plan lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "! lvs01: skipped tcp/198.19.0.21:80: its VIP is the SSH address of host realserver-1") ||
		!strings.Contains(stderr, "! realserver-1: left out of the plan") {
		t.Errorf("stderr:\n%s", stderr)
	}
}

func TestImportHelpAndReady(t *testing.T) {
	out, _, code := runImport(t, &inventoryHosts{}, "--help")
	if code != exitOK || !strings.Contains(out, "Examples:") || !strings.Contains(out, "--identity-file") || strings.Contains(out, "--file") {
		t.Errorf("import --help: exit %d\n%s", code, out)
	}
	// A tunplan without its helpers reaches no host.
	f := twoDirectors()
	var stdout, stderr bytes.Buffer
	io := &IOStreams{In: bufio.NewReader(strings.NewReader("")), Out: &stdout, ErrOut: &stderr}
	code = run(io, f.connect, func() error { return errors.New("this tunplan has no helpers embedded") }, append([]string{"import"}, twoDirectorArgs...))
	if code != exitError || !strings.Contains(stderr.String(), "no helpers embedded") || len(f.targets) != 0 {
		t.Errorf("exit %d, dialled %v, stderr %s", code, f.targets, stderr.String())
	}
}

// noControls fails the test when text holds a character that is not printable (a newline aside):
// one that could drive the operator's terminal.
func noControls(t *testing.T, what, text string) {
	t.Helper()
	for _, r := range strings.ReplaceAll(text, "\n", "") {
		if !unicode.IsPrint(r) {
			t.Errorf("%s holds %U:\n%s", what, r, text)
		}
	}
}

// Text a compromised director sends reaches neither the plan nor the terminal as it is: a skipped
// service's reason that would add a bastion to the plan (every SSH connection of the operator's
// through the attacker's host, which the check of the plan's services cannot see) stays in its
// comment line, escaped; escape sequences in it and in the changes a host reports are shown
// escaped.
func TestImportEscapesRemoteText(t *testing.T) {
	const reason = "x\nssh {\n  jump = \"mallory@198.51.100.66\"\n}\n# \x1b]0;pwned\x07\x1b[2J\u009b31m"
	const escaped = `x\nssh {\n  jump = "mallory@198.51.100.66"\n}\n# \x1b]0;pwned\a\x1b[2J\u009b31m`
	f := twoDirectors()
	f.inv["198.19.0.11"].Skipped = []string{reason}
	f.changes = map[string][]change.Change{
		"beijing": {{Module: "sysctl", Address: "sysctl net.ipv4.conf.all.rp_filter\x1b[2J", Action: change.Update, Before: "0\x1b]0;pwned\x07", After: "1"}},
	}
	stdout, stderr, code := runImport(t, f, twoDirectorArgs...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	noControls(t, "the plan", stdout)
	noControls(t, "stderr", stderr)
	if want := "#   director-1: " + escaped + "\n"; !strings.Contains(stdout, want) {
		t.Errorf("plan lacks %q:\n%s", want, stdout)
	}
	p, _, diags := plans.Load("import.hcl", []byte(stdout), nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	var services []string
	for _, s := range p.Services {
		services = append(services, s.Name)
	}
	if want := []string{"tcp-80", "udp-53"}; !reflect.DeepEqual(services, want) {
		t.Errorf("services %q, want %q", services, want)
	}
	for _, h := range p.Hosts {
		if j := h.Target().Jump; j != nil {
			t.Errorf("%s is reached through %s", h.Name, j.Address)
		}
	}
	for _, want := range []string{
		"! director-1: skipped " + escaped + "\n",
		"  ~ sysctl net.ipv4.conf.all.rp_filter\\x1b[2J  0\\x1b]0;pwned\\a => 1\n",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

// A host's error is shown escaped, on one line.
func TestImportEscapesHostErrors(t *testing.T) {
	f := twoDirectors()
	f.errs = map[string]string{"198.19.0.23": "\x1b[2Jinspect failed\n! realserver-3: all is well\x07"}
	stdout, stderr, code := runImport(t, f, twoDirectorArgs...)
	want := `Error: host realserver-3: \x1b[2Jinspect failed\n! realserver-3: all is well\a` + "\n"
	if code != exitError || stdout != "" || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant %q", code, stdout, stderr, want)
	}
	noControls(t, "stderr", stderr)
}
