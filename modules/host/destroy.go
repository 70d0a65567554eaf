package host

import (
	"os"

	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/protocol"
)

// destroy removes from the host everything tunplan owns (the latest generation's objects): IPVS
// services, the VIPs on their devices (a tunnel device left down if it was down or absent before
// tunplan; the host's own devices never taken down),
// sysctls and the default routes' advmss back to their generation-0 values, the boot files (the
// persisted sysctls among them), then the state directory with the helper in it (kept with
// KeepHistory, where the destroy is recorded as a generation). Kernel modules stay loaded, as
// always. Foreign objects are never read. DryRun only reports the changes. The guard that keeps an
// apply from cutting its SSH session runs first; a failed step puts the snapshot back, as an apply
// does.
func (e *Engine) destroy(req protocol.Request, resp *protocol.Response) error {
	ns, err := e.generationNumbers()
	if err != nil {
		return err
	}
	var owned, base protocol.State
	var latest protocol.Generation
	if len(ns) > 0 {
		if latest, err = e.readGeneration(ns[len(ns)-1]); err != nil {
			return err
		}
		g0, err := e.readGeneration(ns[0])
		if err != nil {
			return err
		}
		owned, base = latest.State, g0.State
	}
	want := destroyTarget(owned, base)
	sc := scopeOf(want, owned)
	snapshot, err := e.facts(sc)
	if err != nil {
		return err
	}
	if err := e.refuse(want, snapshot); err != nil {
		return err
	}
	steps := e.steps(want, snapshot)
	resp.Changes = change.Changes(steps)
	if req.DryRun {
		return nil
	}
	if err := e.run(steps); err != nil {
		return e.restore(sc, snapshot, err, resp)
	}
	resp.Outcome = protocol.Applied
	if !req.KeepHistory {
		return os.RemoveAll(e.Dir)
	}
	after, err := e.facts(sc)
	if err != nil {
		return err
	}
	gen := protocol.Generation{N: latest.N + 1, Time: e.now(), Kind: protocol.KindDestroy, RunID: req.RunID, Actor: req.Actor, Changes: len(steps), State: after}
	if len(ns) == 0 {
		gen.N = 0 // nothing was owned: the host as it is is its generation 0
	}
	resp.Generation = gen.N
	if err := e.writeGeneration(gen); err != nil {
		return err
	}
	return e.recordLastRun(req, *resp, nil)
}

// destroyTarget is what the host keeps of owned once tunplan leaves: no services, no VIPs, each
// tunnel device up or down as before tunplan (base, generation 0; down when generation 0 did not
// read it: tunplan brought it up), the host's own devices (a vip_device) as they are, listed nowhere
// so that only their VIPs go, each sysctl back to its generation-0 value (one tunplan took over later
// keeps its value), each route's advmss back to its generation-0 value (none when generation 0 did
// not read it: tunplan set it), and none of the boot files.
func destroyTarget(owned, base protocol.State) protocol.State {
	var want protocol.State
	baseLinks := map[string]protocol.Link{}
	for _, l := range base.Links {
		baseLinks[l.Name] = l
	}
	for _, l := range owned.Links {
		if !protocol.FallbackTunnel(l.Name) {
			continue
		}
		b, known := baseLinks[l.Name]
		want.Links = append(want.Links, protocol.Link{Name: l.Name, Down: !known || b.Down || b.Missing})
	}
	baseSysctls := map[string]string{}
	for _, s := range base.Sysctls {
		baseSysctls[s.Key] = s.Value
	}
	for _, s := range owned.Sysctls {
		if v, ok := baseSysctls[s.Key]; ok {
			want.Sysctls = append(want.Sysctls, protocol.Sysctl{Key: s.Key, Value: v})
		}
	}
	baseRoutes := map[string]uint32{}
	for _, r := range base.Routes {
		if !r.Missing {
			baseRoutes[r.Dst] = r.AdvMSS
		}
	}
	for _, r := range owned.Routes {
		if r.AdvMSS != 0 || r.Mixed { // an advmss of 0 is none: tunplan holds nothing on the route
			want.Routes = append(want.Routes, protocol.RouteMSS{Dst: r.Dst, AdvMSS: baseRoutes[r.Dst]})
		}
	}
	for _, f := range owned.Files {
		want.Files = append(want.Files, protocol.File{Path: f.Path, Missing: true})
	}
	return want
}
