package host

import (
	"errors"
	"fmt"
	"time"

	"github.com/tunplan/tunplan/modules/protocol"
)

// Probe timeouts: what a request that names none waits, and the most one may ask for.
const (
	defaultProbeTimeout = time.Second
	maxProbeTimeout     = 30 * time.Second
)

// probe answers OpProbe on a director: it sends each probe as IPVS would forward a client's SYN and
// reports what answered, in the order of the request. It takes no lock and changes nothing (the
// realservers' half-open connections it opens are reset at once).
func (e *Engine) probe(req protocol.Request) ([]protocol.ProbeResult, error) {
	if e.Probe == nil {
		return nil, errors.New("probe: this helper cannot send probes")
	}
	timeout := defaultProbeTimeout
	switch {
	case req.TimeoutMS < 0:
		return nil, fmt.Errorf("probe: negative timeout %d ms", req.TimeoutMS)
	case req.TimeoutMS > maxProbeTimeout.Milliseconds():
		return nil, fmt.Errorf("probe: timeout %d ms is more than the %v a probe may wait", req.TimeoutMS, maxProbeTimeout)
	case req.TimeoutMS > 0:
		timeout = time.Duration(req.TimeoutMS) * time.Millisecond
	}
	if len(req.Probes) == 0 {
		return []protocol.ProbeResult{}, nil
	}
	res, err := e.Probe(req.Probes, timeout)
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	// The boundary answers each probe in place (a missing source filled in): anything else is a bug
	// the CLI must not read as some other destination's result.
	if len(res) != len(req.Probes) {
		return nil, fmt.Errorf("probe: %d results for %d probes", len(res), len(req.Probes))
	}
	for i, p := range req.Probes {
		r := res[i].Probe
		if r.Protocol != p.Protocol || r.VIP != p.VIP || r.Port != p.Port || r.RIP != p.RIP || (p.Source.IsValid() && r.Source != p.Source) {
			return nil, fmt.Errorf("probe: result %d is for %s:%d via %s, not %s:%d via %s", i+1, r.VIP, r.Port, r.RIP, p.VIP, p.Port, p.RIP)
		}
	}
	return res, nil
}
