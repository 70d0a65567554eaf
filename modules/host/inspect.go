package host

import (
	"github.com/tunplan/tunplan/modules/ipvs"
	"github.com/tunplan/tunplan/modules/protocol"
	"github.com/tunplan/tunplan/modules/tunnel"
)

// inspect reads what `tunplan import` needs of the host: the whole IPVS table (the services tunplan
// can manage, and why each other one is not), the addresses on tunl0, and the host's other IPv4
// addresses. It changes nothing, takes no lock and reads no generation: import describes the host
// as it is, whoever set it up.
func (e *Engine) inspect() (*protocol.Inventory, error) {
	inv := &protocol.Inventory{Services: []protocol.Service{}}
	// Without ip_vs loaded there is no IPVS table: nothing to open, no service.
	if e.Kmod.Loaded("ip_vs") {
		k, err := e.openIPVS()
		if err != nil {
			return nil, err
		}
		if inv.Services, inv.Skipped, err = ipvs.Inventory(k); err != nil {
			return nil, err
		}
	}
	var err error
	if inv.TunnelAddresses, inv.Addresses, err = tunnel.Inventory(e.Tunnel, protocol.TunnelDevice); err != nil {
		return nil, err
	}
	return inv, nil
}
