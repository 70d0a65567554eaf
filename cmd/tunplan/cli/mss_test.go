package cli

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/tunplan/tunplan/inventory/fleet"
	"github.com/tunplan/tunplan/modules/protocol"
)

// TestMTUWarningNamesTheFix: the MTU warning names the tunnel_mss that fixes it (the path MTU less
// 60) and the realserver to set it on; none when the MSS fits, and no tunnel_mss below what a plan
// accepts.
func TestMTUWarningNamesTheFix(t *testing.T) {
	rip := netip.MustParseAddr("198.18.1.183")
	check := func(name string, mss uint16, mtu int) fleet.Check {
		return fleet.Check{Director: "lvs01", Realserver: name,
			Result: protocol.ProbeResult{Probe: protocol.Probe{RIP: rip, Port: 80}, Outcome: protocol.ProbeOK, MSS: mss, PathMTU: mtu}}
	}
	for _, c := range []struct {
		check fleet.Check
		want  string // the warning's end; "" for none
	}{
		{check("shanghai", 1460, 1500), "; set tunnel_mss = 1440 on shanghai"},
		{check("shanghai", 1460, 0), "; set tunnel_mss = 1440 on shanghai"}, // a path MTU the director could not read: 1500
		{check("", 1460, 1400), "; set tunnel_mss = 1340 on the realserver at 198.18.1.183"},
		{check("shanghai", 1460, 576), "; the realserver's MSS would need to be at most 516, less than tunnel_mss can set (536)"},
		{check("shanghai", 1440, 1500), ""},
	} {
		got := mtuWarning(c.check)
		if (c.want == "") != (got == "") || !strings.HasSuffix(got, c.want) {
			t.Errorf("MSS %d, MTU %d: %q, want it to end with %q", c.check.Result.MSS, c.check.Result.PathMTU, got, c.want)
		}
	}
}
