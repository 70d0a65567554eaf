package plans

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/tunplan/tunplan/modules/protocol"
)

// checkBlock is a health_check block with the attribute lines given, as svc adds it (its own lines
// indented by 4).
func checkBlock(attrs ...string) string {
	if len(attrs) == 0 {
		return "health_check {}"
	}
	return "health_check {\n    " + strings.Join(attrs, "\n    ") + "\n  }"
}

// TestHealthCheckDiagnostics: what validate refuses of health_check blocks, each at the attribute or
// block at fault. svc's health_check block is on line 18, its attributes from line 19.
func TestHealthCheckDiagnostics(t *testing.T) {
	dualDirector := strings.Replace(base6, `"198.18.0.1"`, `"2001:2::1"`, 1)
	both := strings.Replace(base, "role    = \"realserver\"\n  address = \"198.18.1.2\"", "role    = [\"director\", \"realserver\"]\n  address = \"198.18.1.2\"", 1)
	cases := []struct {
		name, src, summary, detail, pos string
	}{
		{"unknown type", base + svc(checkBlock(`type = "htp"`)),
			"Unknown health check type", `Type "htp" is not a check tunplan runs (did you mean "http"?): use "tcp", "http", "https", "udp", "none"`, "19:12"},
		{"type not a string", base + svc(checkBlock(`type = 80`)),
			"Unknown health check type", `Type "80" is not a check`, "19:12"},
		{"timeout equals interval", base + svc(checkBlock(`interval = "1s"`, `timeout = "1s"`)),
			"Check timeout not shorter than its interval", "timeout 1s is not shorter than interval 1s: a check must end before the next one starts", "20:15"},
		{"default timeout above interval", base + svc(checkBlock(`interval = "500ms"`)),
			"Check timeout not shorter than its interval", "timeout 1s is not shorter than interval 500ms", "19:16"},
		{"interval too short", base + svc(checkBlock(`interval = "50ms"`, `timeout = "10ms"`)),
			"Invalid interval", "interval 50ms is out of range: interval must be from 100ms to 1h.", "19:16"},
		{"interval too long", base + svc(checkBlock(`interval = "61m"`)),
			"Invalid interval", "interval 1h1m is out of range", "19:16"},
		{"timeout too short", base + svc(checkBlock(`timeout = "5ms"`)),
			"Invalid timeout", "timeout 5ms is out of range: timeout must be from 10ms to 1h.", "19:15"},
		{"not a duration", base + svc(checkBlock(`interval = "2"`)),
			"Invalid duration", `interval "2" is not a duration: write a number and a unit, such as "500ms", "2s" or "1m".`, "19:16"},
		{"duration not in milliseconds", base + svc(checkBlock(`interval = "1500.5ms"`)),
			"Invalid interval", `interval "1500.5ms" is not a whole number of milliseconds`, "19:16"},
		{"duration not a string", base + svc(checkBlock(`timeout = 1`)),
			"Invalid duration", `timeout "1" is not a duration`, "19:15"},
		{"fall 0", base + svc(checkBlock(`fall = 0`)),
			"Invalid fall", "fall must be from 1 to 100, the failures in a row that quiesce a destination", "19:12"},
		{"rise 101", base + svc(checkBlock(`rise = 101`)),
			"Invalid rise", "rise must be from 1 to 100", "19:12"},
		{"rise not whole", base + svc(checkBlock(`rise = 1.5`)),
			"Invalid rise", "1.5 is not valid here", "19:12"},
		{"path on a default tcp check", base + svc(checkBlock(`path = "/"`)),
			"Attribute applies to http and https checks only", "path means nothing to it. Remove path, or set type = \"http\"", "19:5"},
		{"expect_body on a tcp check", base + svc(checkBlock(`type = "tcp"`, `expect_body = "ok"`)),
			"Attribute applies to http and https checks only", "expect_body means nothing to it", "20:5"},
		{"host on a tcp check", base + svc(checkBlock(`host = "www.example.com"`)),
			"Attribute applies to http and https checks only", "host means nothing to it", "19:5"},
		{"expect_status on a tcp check", base + svc(checkBlock(`expect_status = 200`)),
			"Attribute applies to http and https checks only", "expect_status means nothing to it", "19:5"},
		{"relative path", base + svc(checkBlock(`type = "http"`, `path = "healthz"`)),
			"Invalid check path", `path "healthz" must start with "/"`, "20:12"},
		{"path with a newline", base + svc(checkBlock(`type = "http"`, `path = "/a\r\nX-Evil: 1"`)),
			"Invalid check path", `which a request line cannot carry`, "20:12"},
		{"host with a space", base + svc(checkBlock(`type = "https"`, `host = "www example"`)),
			"Invalid check host", `host "www example" is not a host name`, "20:12"},
		{"empty host", base + svc(checkBlock(`type = "https"`, `host = ""`)),
			"Invalid check host", `Remove it to send the VIP`, "20:12"},
		{"expect_status 99", base + svc(checkBlock(`type = "http"`, `expect_status = 99`)),
			"Invalid expect_status", "an HTTP status code from 100 to 599", "20:21"},
		{"expect_status 600", base + svc(checkBlock(`type = "http"`, `expect_status = 600`)),
			"Invalid expect_status", "600 is not valid here", "20:21"},
		{"misspelt attribute", base + svc(checkBlock(`intervall = "2s"`)),
			"Unsupported argument", `Did you mean "interval"?`, "19:5"},
		{"two blocks", base + svc(checkBlock()+"\n  "+checkBlock(`type = "http"`)),
			"Duplicate health_check block", `virtual_service "web" already has a health_check block at test.hcl:18,3-15`, "19:3"},
		{"udp check on a TCP service", base + svc(checkBlock(`type = "udp"`)),
			"UDP check on a TCP service", `virtual_service "web" is a TCP service: a udp check sends a datagram and waits for one back`, "19:12"},
		{"tcp check on a UDP service", base + udp(probeBlock(`send = "x"`), checkBlock(`type = "tcp"`)),
			"TCP check on a UDP service", `virtual_service "web" is a UDP service, but type "tcp" checks over TCP, which the service does not carry. Set type = "udp", or remove type`, "23:12"},
		{"https check on a UDP service", base + udp(probeBlock(`send = "x"`), checkBlock(`type = "https"`)),
			"TCP check on a UDP service", `type "https" checks over TCP`, "23:12"},
		{"http check on a UDP firewall-mark service", base + fwm(`protocol = "udp"`, checkBlock(`type = "http"`)),
			"TCP check on a UDP service", `Remove the health_check block, or set type = "none": a firewall-mark service has no probe block for a udp check to send.`, "21:12"},
		{"UDP service without a probe", base + udp(checkBlock()),
			"UDP check without a probe", `virtual_service "web" has no valid probe block to send. Add one, such as probe { send = "<text>" }`, "19:3"},
		{"udp check without a probe", base + udp(checkBlock(`type = "udp"`)),
			"UDP check without a probe", "has no valid probe block to send", "20:12"},
		{"UDP service whose probe has no send", base + udp(probeBlock(`expect = "x"`), checkBlock()),
			"UDP check without a probe", "has no valid probe block to send", "22:3"},
		{"UDP firewall-mark service", base + fwm(`protocol = "udp"`, checkBlock()),
			"UDP check without a probe", `virtual_service "web" is a firewall-mark service, which has no probe block`, "20:3"},
		{"path on a default udp check", base + udp(probeBlock(`send = "x"`), checkBlock(`path = "/"`)),
			"Attribute applies to http and https checks only", "A udp check sends the service's probe block and checks the start of the reply (the probe block's expect), so path means nothing to it. Remove path.", "23:5"},
		{"expect_body on a udp check", base + udp(probeBlock(`send = "x"`), checkBlock(`type = "udp"`, `expect_body = "ok"`)),
			"Attribute applies to http and https checks only", "so expect_body means nothing to it", "24:5"},
		{"unknown on_failure", base + svc(checkBlock(`on_failure = "drop"`)),
			"Unknown failure action", `on_failure "drop" is not known: use "quiesce"`, "19:18"},
		{"remove on mh", base + svc(`scheduler = "mh"`, checkBlock(`on_failure = "remove"`)),
			`on_failure = "remove" on an mh service`, "weight 0 keeps its slots", "20:18"},
		{"IPv6 service, IPv4 director", base6 + svc(`vip = "2001:2::10"`, checkBlock()),
			"Director has no IPv6 address", `whose checks leave director "d1" from its IPv6 address, but it has only 198.18.0.1`, "16:16"},
		{"fwmark at the probe base", base + fwm(fmt.Sprintf("fwmark = %d", protocol.ProbeMarkBase)),
			"Firewall mark in the probe range", "fwmark 1953497088 (0x74700000) is in the range tunplan keeps for the directors' health-check probe services, 0x74700000 to 0x7470ffff", "16:12"},
		{"fwmark at the probe end", base + fwm(fmt.Sprintf("fwmark = %d", protocol.ProbeMarkBase+protocol.ProbeMarks-1)),
			"Firewall mark in the probe range", "Pick a mark outside it.", "16:12"},
		{"director without IPv4", dualDirector + svc(checkBlock()),
			"Director has no IPv4 address", `whose checks leave director "d1" from its IPv4 address, but it has only 2001:2::1`, "16:16"},
		{"director that is a realserver", both + svc(`directors = ["d1", "r2"]`, checkBlock()) +
			strings.Replace(strings.Replace(svc(`realserver "r2" {}`), `"web"`, `"api"`, 1), "48.10", "48.11", 1),
			"Health check on a director that is a realserver",
			`Director "r2" checks virtual_service "web", which needs net.ipv4.conf.all.rp_filter=2 (loose reverse-path filtering) and accept_local=1 on it, so that the realservers' answers, which come from the VIP, get in; but it is also a realserver of virtual_service "api" (test.hcl:20,1-22), which needs net.ipv4.conf.all.rp_filter=0.`, "18:3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantError(t, c.src, nil, c.summary, c.detail, c.pos) })
	}
}

// TestHealthCheckAccepted: what validate lets through, and what it makes of it.
func TestHealthCheckAccepted(t *testing.T) {
	cases := []struct {
		name, src string
		want      *HealthCheck // nil: no check
	}{
		{"defaults", base + svc(checkBlock()),
			&HealthCheck{Type: protocol.CheckTCP, Interval: DefaultCheckInterval, Timeout: DefaultCheckTimeout, Fall: 3, Rise: 2, OnFailure: protocol.Quiesce}},
		{"http defaults", base + svc(checkBlock(`type = "http"`)),
			&HealthCheck{Type: protocol.CheckHTTP, Path: "/", ExpectStatus: 200, Interval: DefaultCheckInterval, Timeout: DefaultCheckTimeout, Fall: 3, Rise: 2, OnFailure: protocol.Quiesce}},
		{"https, everything", base + svc(checkBlock(`type = "https"`, `path = "/healthz?full=1"`, `host = "www.example.com"`, `expect_status = 204`, `expect_body = "ok"`,
			`interval = "1m"`, `timeout = "59.5s"`, `fall = 100`, `rise = 1`)),
			&HealthCheck{Type: protocol.CheckHTTPS, Path: "/healthz?full=1", Host: "www.example.com", ExpectStatus: 204, ExpectBody: "ok", Interval: 60_000_000_000, Timeout: 59_500_000_000, Fall: 100, Rise: 1, OnFailure: protocol.Quiesce}},
		{"remove", base + svc(checkBlock(`on_failure = "remove"`)),
			&HealthCheck{Type: protocol.CheckTCP, Interval: DefaultCheckInterval, Timeout: DefaultCheckTimeout, Fall: 3, Rise: 2, OnFailure: protocol.Remove}},
		{"limits", base + svc(checkBlock(`interval = "100ms"`, `timeout = "10ms"`)),
			&HealthCheck{Type: protocol.CheckTCP, Interval: 100_000_000, Timeout: 10_000_000, Fall: 3, Rise: 2, OnFailure: protocol.Quiesce}},
		{"none", base + svc(checkBlock(`type = "none"`, `path = "/"`)), nil},
		{"none on a UDP service", base + udp(checkBlock(`type = "none"`)), nil},
		{"UDP defaults", base + udp(probeBlock(`send = "ping"`, `expect = "pong"`), checkBlock()),
			&HealthCheck{Type: protocol.CheckUDP, Payload: protocol.Payload{Send: "ping", Expect: "pong"}, Interval: DefaultCheckInterval, Timeout: DefaultCheckTimeout, Fall: 3, Rise: 2, OnFailure: protocol.Quiesce}},
		{"udp, any reply", base + udp(probeBlock(`send_hex = "00 01"`), checkBlock(`type = "udp"`, `interval = "5s"`, `timeout = "2s"`, `fall = 1`)),
			&HealthCheck{Type: protocol.CheckUDP, Payload: protocol.Payload{Send: "\x00\x01"}, Interval: 5_000_000_000, Timeout: 2_000_000_000, Fall: 1, Rise: 2, OnFailure: protocol.Quiesce}},
		{"none on an IPv6 service", base6 + svc(`vip = "2001:2::10"`, checkBlock(`type = "none"`)), nil},
		{"firewall-mark service", base + fwm(checkBlock()),
			&HealthCheck{Type: protocol.CheckTCP, Interval: DefaultCheckInterval, Timeout: DefaultCheckTimeout, Fall: 3, Rise: 2, OnFailure: protocol.Quiesce}},
		{"fwmark below the probe range", base + fwm(fmt.Sprintf("fwmark = %d", protocol.ProbeMarkBase-1)), nil},
		{"fwmark above the probe range", base + fwm(fmt.Sprintf("fwmark = %d", protocol.ProbeMarkBase+protocol.ProbeMarks)), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, _, diags := Load("test.hcl", []byte(c.src), nil)
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			got := p.Services[0].Check
			if got != nil {
				got.DeclRange = hcl0
			}
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", c.want) {
				t.Errorf("check\n%+v\nwant\n%+v", got, c.want)
			}
			st := p.Desired()["d1"]
			if (len(st.Checks) != 0) != (c.want != nil) {
				t.Errorf("desired checks %+v", st.Checks)
			}
		})
	}
}

// TestHealthCheckDesired: a director that checks a firewall-mark service checks its first VIP and
// port, and its probe services take the checked port; the realservers and the plan's mark rules
// are those of the same plan without the check.
func TestHealthCheckDesired(t *testing.T) {
	plain := base + fwm(`ports = [443, 80]`, `realserver "r2" {}`)
	checked := base + fwm(`ports = [443, 80]`, `realserver "r2" {}`, checkBlock())
	p, _, diags := Load("test.hcl", []byte(plain), nil)
	q, _, diags2 := Load("test.hcl", []byte(checked), nil)
	if diags.HasErrors() || diags2.HasErrors() {
		t.Fatal(diags, diags2)
	}
	without, with := p.Desired(), q.Desired()
	for _, h := range []string{"r1", "r2"} {
		if a, b := jsonOf(without[h]), jsonOf(with[h]); a != b {
			t.Errorf("%s: the check changed a realserver:\n%s\n%s", h, a, b)
		}
	}
	d := with["d1"]
	if jsonOf(d.Marks) != jsonOf(without["d1"].Marks) {
		t.Errorf("the check changed the mark rules: %s", jsonOf(d.Marks))
	}
	if fmt.Sprint(d.Modules) != "[ip_vs ip_vs_rr ip_vs_wlc ipip nf_tables]" {
		t.Errorf("modules %v", d.Modules)
	}
	if fmt.Sprint(d.Sysctls) != "[{net.ipv4.conf.all.accept_local 1} {net.ipv4.conf.all.rp_filter 2} {net.ipv4.ip_forward 1}]" {
		t.Errorf("sysctls %v", d.Sysctls)
	}
	want := `[{"service":{"protocol":"","address":"0.0.0.0","port":0,"fwmark":1},"type":"tcp","port":443,"source":"198.18.0.1","vip":"198.18.48.10","interval_ms":2000,"timeout_ms":1000,"fall":3,"rise":2,"on_failure":"quiesce",` +
		`"destinations":[{"address":"198.18.1.1","port":0,"weight":1,"mark":1953497088},{"address":"198.18.1.2","port":0,"weight":1,"mark":1953497089}]}]`
	if got := jsonOf(d.Checks); got != want {
		t.Errorf("checks\n%s\nwant\n%s", got, want)
	}
	if len(d.Services) != 3 || d.Services[0].FWMark != 1 {
		t.Fatalf("services %s", jsonOf(d.Services))
	}
	if d.Metrics != protocol.DefaultMetrics || without["d1"].Metrics != "" {
		t.Errorf("metrics file %q, without checks %q", d.Metrics, without["d1"].Metrics)
	}
	for i, s := range d.Services[1:] {
		want := fmt.Sprintf(`{"protocol":"","address":"0.0.0.0","port":0,"fwmark":%d,"scheduler":"rr","destinations":[{"address":"198.18.1.%d","port":443,"weight":1,"forward":"tunnel"}]}`, protocol.ProbeMarkBase+uint32(i), i+1)
		if got := jsonOf(s); got != want {
			t.Errorf("probe service\n%s\nwant\n%s", got, want)
		}
	}
}

// TestHealthCheckDesiredUDP: a director's udp check carries the service's probe block.
func TestHealthCheckDesiredUDP(t *testing.T) {
	p, _, diags := Load("test.hcl", []byte(base+udp(probeBlock(`send = "ping"`, `expect = "pong"`), checkBlock())), nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := `[{"service":{"protocol":"udp","address":"198.18.48.10","port":80},"type":"udp","port":80,"source":"198.18.0.1","vip":"198.18.48.10","payload":{"send":"70696e67","expect":"706f6e67"},` +
		`"interval_ms":2000,"timeout_ms":1000,"fall":3,"rise":2,"on_failure":"quiesce","destinations":[{"address":"198.18.1.1","port":80,"weight":1,"mark":1953497088}]}]`
	if got := jsonOf(p.Desired()["d1"].Checks); got != want {
		t.Errorf("checks\n%s\nwant\n%s", got, want)
	}
}

// TestHealthCheckMarks: a destination's probe mark is the index of its (service, realserver) pair,
// sorted by service and realserver name, over the whole plan: the same on every director, and
// whatever hosts Limit selects.
func TestHealthCheckMarks(t *testing.T) {
	p := mustLoad(t, "testdata/health_check.hcl", nil)
	full := p.Desired()
	marks := map[string]map[string]uint32{} // director → "service destination" → mark
	for _, d := range []string{"lvs01", "lvs02"} {
		marks[d] = map[string]uint32{}
		for _, c := range full[d].Checks {
			for _, dst := range c.Destinations {
				marks[d][c.Service.String()+" "+dst.Address.String()] = dst.Mark
			}
		}
	}
	want := map[string]uint32{
		"fwmark/7 198.18.10.182":             protocol.ProbeMarkBase,     // sticky beijing
		"fwmark/7 198.18.20.11":              protocol.ProbeMarkBase + 1, // sticky chengdu
		"tcp/198.18.48.180:80 198.18.10.182": protocol.ProbeMarkBase + 2, // web beijing
		"tcp/198.18.48.180:80 198.18.1.183":  protocol.ProbeMarkBase + 3, // web shanghai
	}
	if fmt.Sprint(marks["lvs02"]) != fmt.Sprint(want) {
		t.Errorf("lvs02 marks %v, want %v", marks["lvs02"], want)
	}
	for k, v := range marks["lvs01"] {
		if want[k] != v {
			t.Errorf("lvs01: %s has mark %#x, lvs02 %#x", k, v, want[k])
		}
	}
	if len(full["lvs03"].Checks) != 0 || len(full["lvs03"].Sysctls) != 1 {
		t.Errorf("lvs03 checks nothing, but has %s", jsonOf(full["lvs03"]))
	}
	q, diags := p.Limit([]string{"lvs01"})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if a, b := jsonOf(q.Desired()["lvs01"]), jsonOf(full["lvs01"]); a != b {
		t.Errorf("limiting changed lvs01:\n%s\n%s", a, b)
	}
}

// TestTooManyCheckedDestinations: a plan checks at most protocol.ProbeMarks destinations.
func TestTooManyCheckedDestinations(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a plan of 65,792 checked destinations")
	}
	src := `locals {
  rs = [for i in range(256) : format("r%%03d", i)]
}
host "d1" {
  role    = "director"
  address = "198.18.0.1"
}
dynamic "host" {
  for_each = local.rs
  labels   = [host.value]
  content {
    role    = "realserver"
    address = cidrhost("198.18.1.0/24", host.key)
  }
}
dynamic "virtual_service" {
  for_each = range(%d)
  labels   = [format("s%%03d", virtual_service.value)]
  content {
    vip       = "198.18.48.10"
    port      = 1000 + virtual_service.value
    directors = ["d1"]
    dynamic "realserver" {
      for_each = local.rs
      labels   = [realserver.value]
      content {}
    }
    health_check {}
  }
}
`
	// 256 services of 256 realservers: exactly protocol.ProbeMarks.
	p, _, diags := Load("test.hcl", []byte(fmt.Sprintf(src, 256)), nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if got := p.Desired()["d1"].Services; len(got) != 256+int(protocol.ProbeMarks) || got[len(got)-257].FWMark != protocol.ProbeMarkBase+protocol.ProbeMarks-1 {
		t.Errorf("%d services", len(got))
	}
	wantError(t, fmt.Sprintf(src, 257), nil, "Too many checked destinations", "The plan checks 65792 destinations", "28:5")
}

var hcl0 = (&HealthCheck{}).DeclRange

func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// TestHealthCheckDesiredIPv6: an IPv6 service is checked from the director's IPv6 address through
// an IPv6 probe service; the director gets no IPv4 sysctl for it (IPv6 has no accept_local or
// rp_filter to loosen).
func TestHealthCheckDesiredIPv6(t *testing.T) {
	src := strings.Replace(base6, `"198.18.0.1"`, `["198.18.0.1", "2001:2::1"]`, 1) + svc(`vip = "2001:2::10"`, checkBlock())
	p, _, diags := Load("test.hcl", []byte(src), nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	d := p.Desired()["d1"]
	want := `[{"service":{"protocol":"tcp","address":"2001:2::10","port":80},"type":"tcp","port":80,"source":"2001:2::1","vip":"2001:2::10",` +
		`"interval_ms":2000,"timeout_ms":1000,"fall":3,"rise":2,"on_failure":"quiesce","destinations":[{"address":"2001:2:0:1::1","port":80,"weight":1,"mark":1953497088}]}]`
	if got := jsonOf(d.Checks); got != want {
		t.Errorf("checks\n%s\nwant\n%s", got, want)
	}
	if len(d.Services) != 2 || d.Services[0].FWMark != protocol.ProbeMarkBase || d.Services[0].Address != netip.IPv6Unspecified() || len(d.Sysctls) != 1 {
		t.Errorf("services %s, sysctls %v", jsonOf(d.Services), d.Sysctls)
	}
}
