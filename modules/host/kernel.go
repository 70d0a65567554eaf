package host

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tunplan/tunplan/modules/protocol"
)

// Kernel releases from which IPVS makes each tunnel (ip_vs_xmit.c): GUE came in 5.2, its checksum
// flags with GRE in 5.3 (IPVS_DEST_ATTR_TUN_FLAGS). An older kernel ignores the attributes it does
// not know (non-strict netlink parsing) and would tunnel by IPIP without a word.
var tunnelKernels = []struct {
	what         string
	major, minor int
	needs        func(protocol.Tunnel) bool
}{
	{"GUE", 5, 2, func(t protocol.Tunnel) bool { return t.Type == protocol.TunnelGUE }},
	{"GUE with checksums", 5, 3, func(t protocol.Tunnel) bool {
		return t.Type == protocol.TunnelGUE && (t.Checksum || t.RemoteChecksum)
	}},
	{"GRE", 5, 3, func(t protocol.Tunnel) bool { return t.Type == protocol.TunnelGRE }},
}

// checkKernel refuses a state whose destinations use a tunnel this host's kernel cannot make, before
// anything changes. It reads the release only when a destination uses GUE or GRE.
func (e *Engine) checkKernel(want protocol.State) error {
	if e.Release == nil {
		return nil
	}
	var release string
	var major, minor int
	for _, s := range want.Services {
		for _, d := range s.Destinations {
			if d.Tunnel.Type == protocol.TunnelIPIP {
				continue
			}
			if release == "" {
				r, err := e.Release()
				if err != nil {
					return fmt.Errorf("reading the kernel release, to check that it can tunnel by %s: %w", strings.ToUpper(d.Tunnel.Type.String()), err)
				}
				if major, minor, err = parseRelease(r); err != nil {
					return err
				}
				release = r
			}
			for i := len(tunnelKernels) - 1; i >= 0; i-- {
				k := tunnelKernels[i]
				if k.needs(d.Tunnel) && (major < k.major || major == k.major && minor < k.minor) {
					return fmt.Errorf("refusing to change this host: %s -> %s tunnels by %s (%s), which IPVS does from Linux %d.%d on, and this host runs %s; "+
						"an older kernel ignores the tunnel type and would send IPIP. Upgrade the director's kernel, or use another tunnel for this service",
						s.Key(), d.Address, k.what, d.Tunnel, k.major, k.minor, release)
				}
			}
		}
	}
	return nil
}

// parseRelease reads the major and minor version of a kernel release: "6.1.0-18-amd64" is 6, 1.
func parseRelease(r string) (int, int, error) {
	f := strings.SplitN(strings.TrimSpace(r), ".", 3)
	if len(f) >= 2 {
		minor := f[1]
		if i := strings.IndexFunc(minor, func(c rune) bool { return c < '0' || c > '9' }); i >= 0 {
			minor = minor[:i]
		}
		maj, err1 := strconv.Atoi(f[0])
		min, err2 := strconv.Atoi(minor)
		if err1 == nil && err2 == nil {
			return maj, min, nil
		}
	}
	return 0, 0, fmt.Errorf("cannot read the kernel release %q", r)
}
