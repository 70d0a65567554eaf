package cli

import (
	"github.com/tunplan/tunplan/cmd/tunplan/helperbin"
	"github.com/tunplan/tunplan/inventory"
	"github.com/tunplan/tunplan/inventory/fleet"
	"github.com/tunplan/tunplan/inventory/target"
)

// SSH is the real Connector: one SSH connection per host per run, in which one helper process
// serves the run's requests (uploaded first when the host lacks the current one).
func SSH(t target.Target) (fleet.Session, error) {
	c, err := inventory.Dial(t)
	if err != nil {
		return nil, err
	}
	if err := c.StartHelper(helperbin.Embedded{}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
