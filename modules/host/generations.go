package host

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/tunplan/tunplan/modules/protocol"
)

// Generations are the recorded states of what tunplan owns on a host, one JSON file each under
// Dir/generations: generation 0 is the host before tunplan first changed it.

// latestState is what tunplan last made the host have: the objects it owns, none before tunplan
// first changed the host. A latest generation that cannot be read is an error: taken for none, it
// would hide every owned object, and a diff would report no drift where an apply fails.
func (e *Engine) latestState() (protocol.State, error) {
	g, err := e.latestGeneration()
	if err != nil || g == nil {
		return protocol.State{}, err
	}
	return g.State, nil
}

func (e *Engine) genDir() string { return filepath.Join(e.Dir, "generations") }

// generationNumbers lists the recorded generations, oldest first, from their file names alone.
func (e *Engine) generationNumbers() ([]int, error) {
	entries, err := os.ReadDir(e.genDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ns []int
	for _, ent := range entries {
		if n, err := strconv.Atoi(strings.TrimSuffix(ent.Name(), ".json")); err == nil && strings.HasSuffix(ent.Name(), ".json") {
			ns = append(ns, n)
		}
	}
	sort.Ints(ns)
	return ns, nil
}

func (e *Engine) genPath(n int) string { return filepath.Join(e.genDir(), fmt.Sprintf("%06d.json", n)) }

// readGeneration reads generation n; its error names the file (see readState).
func (e *Engine) readGeneration(n int) (protocol.Generation, error) {
	var g protocol.Generation
	err := readState(genName(n), e.genPath(n), &g)
	return g, err
}

func genName(n int) string { return fmt.Sprintf("generation %d", n) }

// latestGeneration is the current generation, nil before tunplan first changed the host, read for
// what an apply or a diff needs of it: its number, its run, and the scope of what it owns. Only it
// is read, and its services without their destinations, which are nearly all of a large table's
// megabyte: decoding them would cost a no-op apply as much again as its request. Of those only the
// tunnel is read, and a service keeps one destination per tunnel other than IPIP, with nothing
// else set: whether GUE or GRE is owned decides how the destinations are read (scope.tunnels).
func (e *Engine) latestGeneration() (*protocol.Generation, error) {
	ns, err := e.generationNumbers()
	if err != nil || len(ns) == 0 {
		return nil, err
	}
	n := ns[len(ns)-1]
	type tunnelOnly struct {
		Tunnel protocol.Tunnel `json:"tunnel"`
	}
	var g struct {
		protocol.Generation
		State struct {
			protocol.State
			Services []struct {
				protocol.Key
				Destinations []tunnelOnly `json:"destinations"`
			} `json:"services"`
		} `json:"state"`
	}
	if err := readState(genName(n), e.genPath(n), &g); err != nil {
		return nil, err
	}
	g.Generation.State = g.State.State
	for _, k := range g.State.Services {
		s := protocol.Service{Protocol: k.Protocol, Address: k.Address, Port: k.Port, FWMark: k.FWMark}
		for _, d := range k.Destinations {
			if d.Tunnel.Type != protocol.TunnelIPIP && !slices.ContainsFunc(s.Destinations, func(x protocol.Destination) bool { return x.Tunnel == d.Tunnel }) {
				s.Destinations = append(s.Destinations, protocol.Destination{Tunnel: d.Tunnel})
			}
		}
		g.Generation.State.Services = append(g.Generation.State.Services, s)
	}
	return &g.Generation, nil
}

func (e *Engine) generations() ([]protocol.Generation, error) {
	ns, err := e.generationNumbers()
	if err != nil {
		return nil, err
	}
	var gens []protocol.Generation
	for _, n := range ns {
		g, err := e.readGeneration(n)
		if err != nil {
			return nil, err
		}
		gens = append(gens, g)
	}
	return gens, nil
}

func (e *Engine) writeGeneration(g protocol.Generation) error {
	if err := mkdirPrivate(e.Dir, e.genDir()); err != nil {
		return err
	}
	return writeJSON(e.genPath(g.N), g)
}
