package imports

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/tunplan/tunplan/modules/protocol"
	"github.com/tunplan/tunplan/plans"
)

// Given is a host as the operator named it.
type Given struct {
	Name       string // "": named after its address
	SSHAddress string
}

// Hosts names the directors and realservers given: each SSH address once, each name once. A host
// given without a name gets its DNS name's first label when that is a valid host name, else
// role-n ("director-1", "realserver-2": the nth host of its list), made unique with -2, -3… An
// address given as a director and as a realserver is one host, a director (which is a realserver
// too when a destination is one of its addresses). The hosts have no Inventory yet.
func Hosts(directors, realservers []Given) ([]Host, error) {
	var hosts []Host
	byAddr, byName := map[string]int{}, map[string]int{} // index in hosts
	for i, g := range append(slices.Clone(directors), realservers...) {
		director, name := i < len(directors), g.Name
		if name == "" && director {
			name = defaultName(g.SSHAddress, protocol.Director, i+1)
		} else if name == "" {
			name = defaultName(g.SSHAddress, protocol.Realserver, i+1-len(directors))
		}
		if j, ok := byAddr[g.SSHAddress]; ok {
			h := hosts[j]
			if director || !h.Director {
				return nil, fmt.Errorf("%s is given twice: name each host once", g.SSHAddress)
			}
			if g.Name != "" && g.Name != h.Name {
				return nil, fmt.Errorf("%s is given as director %q and as realserver %q: a host has one name", g.SSHAddress, h.Name, g.Name)
			}
			continue
		}
		if j, ok := byName[name]; ok {
			if g.Name != "" {
				return nil, fmt.Errorf("two hosts are named %q (%s and %s): host names must be unique", name, hosts[j].SSHAddress, g.SSHAddress)
			}
			name = uniqueName(name, byName)
		}
		byAddr[g.SSHAddress], byName[name] = len(hosts), len(hosts)
		hosts = append(hosts, Host{Name: name, SSHAddress: g.SSHAddress, Director: director})
	}
	return hosts, nil
}

// defaultName is a DNS name's first label, when it is a valid host name, else role-n.
func defaultName(addr string, role protocol.Role, n int) string {
	if _, err := netip.ParseAddr(addr); err != nil {
		if label, _, _ := strings.Cut(addr, "."); plans.ValidHostName(label) {
			return label
		}
	}
	return fmt.Sprintf("%s-%d", role, n)
}

// uniqueName is name-2, name-3… whichever is first not taken.
func uniqueName[V any](name string, taken map[string]V) string {
	for i := 2; ; i++ {
		n := fmt.Sprintf("%s-%d", name, i)
		if _, dup := taken[n]; !dup {
			return n
		}
	}
}
