package health

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/tunplan/tunplan/modules/files"
	"github.com/tunplan/tunplan/modules/ipvs"
	"github.com/tunplan/tunplan/modules/protocol"
)

// Watcher runs a director's checks, read from Config (protocol.WatchSpec), until its context ends.
// It sets the weights they decide on the checked services' destinations (only weights: never a
// service or a destination's membership), writes what it sees to Status (protocol.Health) about
// twice a second, and writes one line to Log per change of a destination's health, with the reason.
// It reads Config again when the file changes, keeping what it knows of destinations that stay.
type Watcher struct {
	Config, Status string
	// Drains is the operator's drains (protocol.DrainFile): a drained destination stays at weight 0.
	Drains string
	IPVS   func() (ipvs.Kernel, error)
	Log    io.Writer
	// Check runs one check (the package's Check; tests fake it).
	Check func(context.Context, protocol.HealthCheck, protocol.CheckedDestination) error
	// Every is how often the destinations the watcher holds at weight 0 are set to 0 again,
	// whatever changed them (a restore at boot, a rollback). Other weights are the plan's: the
	// watcher sets them only when it starts, reads new checks, or sees a destination's health
	// change, so a weight changed by hand stays, as drift, for apply to fix.
	Every time.Duration
	// MetricsEvery is how often the Prometheus text file is written (WatchSpec.Metrics).
	MetricsEvery time.Duration

	spec     protocol.WatchSpec
	raw      []byte
	services [][]*tracker // services[i] are spec.Checks[i]'s destinations, in order
	gen      int          // bumped at each load; results of an older load are dropped
	stop     context.CancelFunc
	kernel   ipvs.Kernel
	drained  map[drainKey]bool // the drains last read
	// noMetricsDir: the metrics file's directory was missing at the last write (and logged).
	noMetricsDir bool
}

// statusEvery is how often the watcher writes Status (its heartbeat) and looks at Config.
const statusEvery = 500 * time.Millisecond

type result struct {
	gen, svc, dst int
	err           error
	took          time.Duration
}

// Run watches until ctx ends. It fails only when Config cannot be read at the start.
func (w *Watcher) Run(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Dir(w.Status), 0o755); err != nil {
		return err
	}
	results := make(chan result, 64)
	w.stop = func() {}
	defer func() { w.stop() }()
	if err := w.load(ctx, results); err != nil {
		return err
	}
	tick := time.NewTicker(statusEvery)
	defer tick.Stop()
	every := time.NewTicker(w.Every)
	defer every.Stop()
	metrics := time.NewTicker(w.MetricsEvery)
	defer metrics.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-results:
			if r.gen != w.gen {
				continue
			}
			t := w.services[r.svc][r.dst]
			if t.observe(r.err, r.took, time.Now()) {
				state, n := "healthy", t.rise
				if !t.healthy {
					state, n = "failing", t.fall
				}
				w.logf("%s -> %s: %s after %d checks in a row: %s", w.spec.Checks[r.svc].Service, addrPort(t.dest), state, n, t.last)
				w.apply(true, r.svc)
			}
		case <-tick.C:
			if err := w.load(ctx, results); err != nil {
				w.logf("%v (still watching as before)", err)
			}
			if err := w.writeStatus(); err != nil {
				w.logf("status: %v", err)
			}
		case <-every.C:
			w.apply(false, w.every()...)
		case <-metrics.C:
			if err := w.writeMetrics(); err != nil {
				w.logf("metrics: %v", err)
			}
		}
	}
}

// load reads Config and, when it changed, restarts the checks from it.
func (w *Watcher) load(ctx context.Context, results chan<- result) error {
	b, err := os.ReadFile(w.Config)
	if err != nil {
		return err
	}
	if bytes.Equal(b, w.raw) {
		return nil
	}
	var spec protocol.WatchSpec
	if err := json.Unmarshal(b, &spec); err != nil {
		return fmt.Errorf("%s: %w", w.Config, err)
	}
	w.stop()
	known := map[string]*tracker{}
	for i, ts := range w.services {
		for _, t := range ts {
			known[w.spec.Checks[i].Service.String()+" "+addrPort(t.dest)] = t
		}
	}
	w.raw, w.spec, w.services = b, spec, nil
	w.gen++
	cctx, cancel := context.WithCancel(ctx)
	w.stop = cancel
	n := 0
	for i, c := range spec.Checks {
		var ts []*tracker
		for j, d := range c.Destinations {
			t := known[c.Service.String()+" "+addrPort(d)]
			if t == nil {
				t = newTracker(d, c.Fall, c.Rise, time.Now())
			}
			t.dest, t.fall, t.rise = d, c.Fall, c.Rise
			ts = append(ts, t)
			go w.loop(cctx, result{gen: w.gen, svc: i, dst: j}, c, d, results)
			n++
		}
		w.services = append(w.services, ts)
	}
	w.logf("watching %d destinations of %d services", n, len(spec.Checks))
	w.apply(true, w.every()...)
	return nil
}

// loop checks d every interval and sends each result, tagged as r, until ctx ends.
func (w *Watcher) loop(ctx context.Context, r result, c protocol.HealthCheck, d protocol.CheckedDestination, out chan<- result) {
	t := time.NewTicker(time.Duration(c.IntervalMS) * time.Millisecond)
	defer t.Stop()
	for {
		start := time.Now()
		r.err = w.Check(ctx, c, d)
		r.took = time.Since(start)
		select {
		case out <- r:
		case <-ctx.Done():
			return
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// every is the index of every checked service.
func (w *Watcher) every() []int {
	out := make([]int, len(w.spec.Checks))
	for i := range out {
		out[i] = i
	}
	return out
}

// apply makes the kernel's destinations of the checked services svcs (indexes in spec.Checks) what
// their health decides, where it has others: all of them, or (all false) only those held at 0 or
// out. A destination that fails its checks has weight 0 (on_failure quiesce) or leaves the service
// (remove); a drained one has weight 0 whatever its health; a removed one that passes again is
// added back at its plan weight. The kernel's table is read once for them all; each change is
// logged as apply shows it.
func (w *Watcher) apply(all bool, svcs ...int) {
	k, err := w.ipvs()
	if err != nil {
		w.logf("%v", err)
		return
	}
	drained := w.readDrains()
	edits := make(map[protocol.Key]func([]protocol.Destination) []protocol.Destination, len(svcs))
	for _, i := range svcs {
		c := w.spec.Checks[i]
		want, failOpen := weights(w.services[i])
		if failOpen && all {
			w.logf("%s: every destination fails its check: all keep their plan weight (fail open)", c.Service)
		}
		edits[c.Service] = w.edit(i, want, failOpen, all, drained)
	}
	changes, err := ipvs.Edit(k, edits)
	for _, ch := range changes {
		w.logf("%c %s  %s", ch.Action, ch.Address, ch.Shown())
	}
	if err != nil {
		w.logf("%v", err)
	}
}

// target is what one checked destination must be in the kernel: its weight, or out of the service.
type target struct {
	weight uint32
	out    bool
}

// edit is the edit of checked service i that apply makes (want[j] is the weight weights gives
// destination j).
func (w *Watcher) edit(i int, want []uint32, failOpen, all bool, drained map[drainKey]bool) func([]protocol.Destination) []protocol.Destination {
	c := w.spec.Checks[i]
	remove := c.OnFailure == protocol.Remove
	targets := make(map[netip.AddrPort]target, len(want))
	for j, d := range c.Destinations {
		t := target{weight: want[j]}
		switch {
		case drained[drainKey{c.Service, addrPort(d)}]:
			t.weight = 0
		case remove && !w.services[i][j].healthy && !failOpen:
			t.out = true
		}
		if all || t.weight == 0 || t.out {
			targets[netip.AddrPortFrom(d.Address, d.Port)] = t
		}
	}
	return func(ds []protocol.Destination) []protocol.Destination {
		var out []protocol.Destination
		have := map[netip.AddrPort]bool{}
		for _, d := range ds {
			ap := netip.AddrPortFrom(d.Address, d.Port)
			have[ap] = true
			t, ok := targets[ap]
			if ok && t.out {
				continue
			}
			if ok {
				d.Weight = t.weight
			}
			out = append(out, d)
		}
		for _, d := range c.Destinations { // back in: what the watcher took out (remove) and passes again
			ap := netip.AddrPortFrom(d.Address, d.Port)
			if t, ok := targets[ap]; remove && ok && !t.out && !have[ap] {
				out = append(out, protocol.Destination{Address: d.Address, Port: d.Port, Weight: t.weight, Forward: protocol.ForwardTunnel, Tunnel: d.Tunnel})
			}
		}
		return out
	}
}

// ipvs is the kernel's IPVS, opened at the first need.
func (w *Watcher) ipvs() (ipvs.Kernel, error) {
	if w.kernel == nil {
		k, err := w.IPVS()
		if err != nil {
			return nil, fmt.Errorf("ipvs: %w", err)
		}
		w.kernel = k
	}
	return w.kernel, nil
}

type drainKey struct {
	service protocol.Key
	dest    string
}

// readDrains reads the operator's drains (Drains), and keeps the last it could read when the file
// cannot be: a drain must not be undone by a bad read.
func (w *Watcher) readDrains() map[drainKey]bool {
	var d protocol.Drains
	b, err := os.ReadFile(w.Drains)
	if err == nil {
		err = json.Unmarshal(b, &d)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		w.drained = nil
	case err == nil:
		w.drained = map[drainKey]bool{}
		for _, x := range d.Drains {
			w.drained[drainKey{x.Service, netip.AddrPortFrom(x.Address, x.Port).String()}] = true
		}
	default:
		w.logf("%s cannot be read (%v): the drains read before stay", w.Drains, err)
	}
	return w.drained
}

// writeStatus writes what the watcher sees to Status, replacing it whole.
func (w *Watcher) writeStatus() error {
	b, err := json.Marshal(w.health())
	if err != nil {
		return err
	}
	return files.Replace(w.Status, b, 0o644)
}

// health is what the watcher sees now.
func (w *Watcher) health() protocol.Health {
	h := protocol.Health{Heartbeat: time.Now().UTC(), PID: os.Getpid(), Services: []protocol.ServiceHealth{}}
	for i, c := range w.spec.Checks {
		_, failOpen := weights(w.services[i])
		sh := protocol.ServiceHealth{Service: c.Service, FailOpen: failOpen}
		for _, t := range w.services[i] {
			sh.Destinations = append(sh.Destinations, protocol.DestinationHealth{
				Address: t.dest.Address, Port: t.dest.Port, Healthy: t.healthy, Quiesced: !t.healthy && !failOpen,
				Since: t.since.UTC(), Last: t.last, Checks: t.checks, Failures: t.failures,
			})
		}
		h.Services = append(h.Services, sh)
	}
	return h
}

func (w *Watcher) logf(format string, args ...any) {
	fmt.Fprintf(w.Log, "tunplan-watch: "+format+"\n", args...)
}

func addrPort(d protocol.CheckedDestination) string {
	return netip.AddrPortFrom(d.Address, d.Port).String()
}
