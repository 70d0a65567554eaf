package imports

import (
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/hashicorp/hcl/v2"

	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/protocol"
	"github.com/tunplan/tunplan/plans"
)

// Check loads the plan's HCL as `tunplan validate` loads a file (plans.Load, in memory; filename
// names it in the diagnostics) and makes sure the loaded plan asks each director for exactly the
// services read there. The files and diagnostics are for showing, also when Check fails. An error
// is a bug of import.
func (p *Plan) Check(filename string) (*plans.Plan, map[string]*hcl.File, hcl.Diagnostics, error) {
	loaded, files, diags := plans.Load(filename, p.HCL(), nil)
	if diags.HasErrors() {
		return nil, files, diags, errors.New("the imported plan does not validate: this is a bug in tunplan import; please report it with the diagnostics above")
	}
	if err := p.sameServices(loaded.Desired()); err != nil {
		return nil, files, diags, err
	}
	return loaded, files, diags, nil
}

// sameServices makes sure the desired state asks each director for exactly the services read there.
func (p *Plan) sameServices(desired map[string]protocol.State) error {
	want := map[string][]protocol.Service{}
	for _, s := range p.services {
		for _, d := range s.directors {
			want[d] = append(want[d], s.svc)
		}
	}
	for _, h := range p.hosts {
		w := want[h.Name]
		slices.SortFunc(w, func(x, y protocol.Service) int {
			return cmp.Or(cmp.Compare(x.Protocol, y.Protocol), x.Address.Compare(y.Address), cmp.Compare(x.Port, y.Port))
		})
		if got := desired[h.Name].Services; !reflect.DeepEqual(got, w) && len(got)+len(w) > 0 {
			return fmt.Errorf("the imported plan asks %s for other services than it has (a bug in tunplan import, please report it):\nplan: %+v\nhost: %+v", h.Name, got, w)
		}
	}
	return nil
}

// The sysctls a plan may leave alone, by the changes applying it would make to them.
const (
	ipForwardChange   = "sysctl net.ipv4.ip_forward"            // a director's; ip_forward = false leaves it
	arpIgnoreChange   = "sysctl net.ipv4.conf.all.arp_ignore"   // a realserver's two; hide_vip = false leaves them
	arpAnnounceChange = "sysctl net.ipv4.conf.all.arp_announce" //
)

// LeaveAlone takes the changes applying the plan would make on the host called name, and makes the
// plan leave alone what the host has as it is where the plan language allows it: a director's
// forwarding that is off (ip_forward = false: a TUN director does not need it), a realserver's ARP
// settings that are not the plan's (hide_vip = false, as the manual's script leaves them). It
// returns the changes without those, and a note for each attribute it set.
func (p *Plan) LeaveAlone(name string, changes []change.Change) ([]change.Change, []string) {
	i := slices.IndexFunc(p.hosts, func(h *host) bool { return h.Name == name })
	if i < 0 {
		return changes, nil
	}
	h := p.hosts[i]
	var kept []change.Change
	var notes []string
	for _, c := range changes {
		switch {
		case h.roles.Has(protocol.Director) && c.Address == ipForwardChange && c.After == "1":
			h.ipForwardOff = true
			notes = append(notes, fmt.Sprintf("%s: net.ipv4.ip_forward is %s there: the plan says ip_forward = false, so tunplan leaves it alone (a TUN director does not need it)", h.Name, c.Before))
		case h.roles.Has(protocol.Realserver) && (c.Address == arpIgnoreChange || c.Address == arpAnnounceChange):
			if !h.hideVIPOff {
				notes = append(notes, fmt.Sprintf("%s: arp_ignore and arp_announce are not set to hide the VIPs there: the plan says hide_vip = false, so tunplan leaves them alone", h.Name))
			}
			h.hideVIPOff = true
		default:
			kept = append(kept, c)
		}
	}
	if len(notes) == 0 {
		return changes, nil
	}
	return kept, notes
}
