package plans

import (
	"strings"
	"testing"
)

// base6 is base with dual-stack realservers (lines 1-12); service snippets start at line 13.
var base6 = strings.NewReplacer(`"198.18.1.1"`, `["198.18.1.1", "2001:2:0:1::1"]`, `"198.18.1.2"`, `["198.18.1.2", "2001:2:0:1::2"]`).Replace(base)

// fwm is a firewall-mark service on lines 13 on, with lines replacing its attributes by name.
func fwm(lines ...string) string {
	s := svc(append([]string{`fwmark = 1`, `vips = ["198.18.48.10"]`, `ports = [80, 443]`}, lines...)...)
	s = strings.Replace(s, "  vip       = \"198.18.48.10\"\n", "", 1)
	return strings.Replace(s, "  port      = 80\n", "", 1)
}

// TestInvalidFamiliesAndMarks: what validate refuses of IPv6 and firewall-mark services, each at the
// attribute or block at fault.
func TestInvalidFamiliesAndMarks(t *testing.T) {
	cases := []struct {
		name, src, summary, detail, pos string
	}{
		{"two IPv4 addresses", strings.Replace(base, `"198.18.1.1"`, `["198.18.1.1", "198.18.1.9"]`, 1) + svc(),
			"Two addresses of one family", "198.18.1.9 is of the same family as 198.18.1.1", "7:28"},
		{"three addresses", strings.Replace(base, `"198.18.1.1"`, `["198.18.1.1", "2001:2::1", "2001:2::2"]`, 1) + svc(),
			"Invalid address list", "it has 3", "7:13"},
		{"duplicate IPv6 address", strings.Replace(base6, `2001:2:0:1::2"`, `2001:2:0:1::1"`, 1) + svc(),
			"Duplicate host address", `2001:2:0:1::1, already the address of host "r1"`, "9:1"},
		{"IPv4 VIP, IPv6-only realserver", strings.Replace(base, `"198.18.1.1"`, `"2001:2:0:1::1"`, 1) + svc(),
			"Realserver has no IPv4 address", `only the IPv6 address 2001:2:0:1::1`, "17:14"},
		{"IPv6 VIP is a host address", base6 + svc(`vip = "2001:2:0:1::2"`),
			"VIP is a host address", `data-plane address of host "r2"`, "14:9"},
		{"GUE over IPv6", base6 + svc(`vip = "2001:2::10"`, `tunnel = "gue"`, "gue {\n    port = 6080\n  }"),
			"Tunnel not supported for IPv6", "GUE and GRE over IPv6", "18:12"},
		{"fwmark 0", base + fwm(`fwmark = 0`),
			"Invalid fwmark", "a firewall mark from 1 to 4294967295", "16:12"},
		{"vip on a fwmark service", base + fwm(`vip = "198.18.48.10"`),
			"Attribute does not apply to a firewall-mark service", "Replace vip = … with vips = [ … ]", "14:3"},
		{"vips without fwmark", base + svc(`vips = ["198.18.48.10"]`),
			"Attribute applies to firewall-mark services only", "has no fwmark", "18:3"},
		{"fwmark without ports", base + strings.Replace(fwm(), "  ports = [80, 443]\n", "", 1),
			`Missing required attribute "ports"`, "such as [80, 443]", "13:1"},
		{"duplicate port", base + fwm(`ports = [80, 80]`),
			"Duplicate port", "Port 80 is listed twice", "18:16"},
		{"VIPs of two families", base6 + fwm(`vips = ["198.18.48.10", "2001:2::10"]`),
			"VIPs of two families", "a service of its own, with its own fwmark", "17:27"},
		{"duplicate fwmark", base + fwm() + strings.Replace(strings.Replace(fwm(), `"web"`, `"web2"`, 1), "198.18.48.10", "198.18.48.11", 1),
			"Duplicate firewall mark", `already the mark of virtual_service "web"`, "23:12"},
		{"port covered twice", base + fwm() + strings.Replace(svc(`port = 443`), `"web"`, `"tls"`, 1),
			"Service covered twice", `tcp/198.18.48.10:443 is covered by both virtual_service "web"`, "20:1"},
		{"realserver port on a fwmark service", base + strings.Replace(fwm(), `realserver "r1" {}`, "realserver \"r1\" {\n    port = 80\n  }", 1),
			"Realserver port on a firewall-mark service", "its realservers take no port", "16:5"},
		{"probe on an IPv6 service", base6 + svc(`vip = "2001:2::10"`, `protocol = "udp"`, "probe {\n    send = \"x\"\n  }"),
			"Probe block on a service verify does not probe", "IPv6 service", "19:3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantError(t, c.src, nil, c.summary, c.detail, c.pos) })
	}
}
