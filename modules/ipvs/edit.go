package ipvs

import (
	"fmt"
	"strings"

	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/protocol"
)

// Edit changes the destinations of some services, as the kernel has them now, and nothing else:
// edits[key] gets the kernel's destinations of that service (a copy) and returns them as they must
// be: weights changed, some left out (removed), some added. The table is read once for them all.
// Edit returns the changes it made, after the kernel answered them all. The watcher and a drain
// change services this way, never a scheduler or a persistence. A service that is not in the kernel
// is left to the next apply; Edit edits the others and then names those in its error.
func Edit(k Kernel, edits map[protocol.Key]func([]protocol.Destination) []protocol.Destination) ([]change.Change, error) {
	scope := make(map[protocol.Key]bool, len(edits))
	for key := range edits {
		scope[key] = true
	}
	cur, err := Facts(k, scope, true)
	if err != nil {
		return nil, err
	}
	next := make([]protocol.Service, len(cur))
	for i, s := range cur {
		delete(scope, s.Key())
		next[i] = s
		next[i].Destinations = edits[s.Key()](append([]protocol.Destination(nil), s.Destinations...))
	}
	steps := Diff(func() (Kernel, error) { return k, nil }, next, cur)
	for _, s := range steps {
		if err := s.Do(); err != nil {
			return nil, err
		}
	}
	var changes []change.Change
	if len(steps) > 0 {
		changes = change.Changes(steps)
		if err := k.Flush(); err != nil {
			return changes, err
		}
	}
	if len(scope) > 0 {
		var missing []string
		for key := range scope {
			missing = append(missing, key.String())
		}
		return changes, fmt.Errorf("not in the kernel, left to the next apply: %s", strings.Join(missing, ", "))
	}
	return changes, nil
}
