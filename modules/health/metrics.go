package health

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/tunplan/tunplan/modules/ipvs"
	"github.com/tunplan/tunplan/modules/protocol"
)

// The watcher writes, every MetricsEvery, a Prometheus text file (node_exporter's textfile
// collector format) of its checked destinations: their health, weights and IPVS counters.

// metricDest is one checked destination as the metrics see it.
type metricDest struct {
	service protocol.Key
	health  protocol.DestinationHealth
	plan    uint32
	drained bool
	kernel  *protocol.DestinationStatus // nil: not in the kernel
}

// family is one metric: its name, help, type and the value of a destination (ok false: no sample).
type family struct {
	name, help, typ string
	value           func(metricDest) (uint64, bool)
}

func flag(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func always(f func(metricDest) uint64) func(metricDest) (uint64, bool) {
	return func(d metricDest) (uint64, bool) { return f(d), true }
}

func counted(f func(protocol.DestinationStatus) uint64) func(metricDest) (uint64, bool) {
	return func(d metricDest) (uint64, bool) {
		if d.kernel == nil {
			return 0, false
		}
		return f(*d.kernel), true
	}
}

var families = []family{
	{"tunplan_destination_healthy", "Whether the destination passes its health checks through the tunnel.", "gauge", always(func(d metricDest) uint64 { return flag(d.health.Healthy) })},
	{"tunplan_destination_quiesced", "Whether the watcher holds the destination at weight 0 because it fails its checks.", "gauge", always(func(d metricDest) uint64 { return flag(d.health.Quiesced) })},
	{"tunplan_destination_drained", "Whether an operator drained the destination (tunplan drain).", "gauge", always(func(d metricDest) uint64 { return flag(d.drained) })},
	{"tunplan_destination_plan_weight", "The destination's weight in the plan.", "gauge", always(func(d metricDest) uint64 { return uint64(d.plan) })},
	{"tunplan_destination_weight", "The destination's weight in the kernel now.", "gauge", counted(func(s protocol.DestinationStatus) uint64 { return uint64(s.Weight) })},
	{"tunplan_destination_checks_total", "Health checks run since the watcher started.", "counter", always(func(d metricDest) uint64 { return d.health.Checks })},
	{"tunplan_destination_check_failures_total", "Health checks failed since the watcher started.", "counter", always(func(d metricDest) uint64 { return d.health.Failures })},
	{"tunplan_destination_active_connections", "IPVS connections to the destination that are established now.", "gauge", counted(func(s protocol.DestinationStatus) uint64 { return uint64(s.ActiveConns) })},
	{"tunplan_destination_inactive_connections", "IPVS connections to the destination in another state now.", "gauge", counted(func(s protocol.DestinationStatus) uint64 { return uint64(s.InactiveConns) })},
	{"tunplan_destination_connections_total", "Connections IPVS scheduled to the destination.", "counter", counted(func(s protocol.DestinationStatus) uint64 { return s.Conns })},
	{"tunplan_destination_in_packets_total", "Packets IPVS forwarded to the destination.", "counter", counted(func(s protocol.DestinationStatus) uint64 { return s.InPackets })},
	{"tunplan_destination_in_bytes_total", "Bytes IPVS forwarded to the destination.", "counter", counted(func(s protocol.DestinationStatus) uint64 { return s.InBytes })},
}

// renderMetrics is the text file of h's destinations, with their plan weights (from checks), the
// drains and the kernel's services st.
func renderMetrics(h protocol.Health, checks []protocol.HealthCheck, st []protocol.ServiceStatus, drained map[drainKey]bool) []byte {
	var dests []metricDest
	failOpen := map[protocol.Key]bool{}
	for i, sh := range h.Services {
		failOpen[sh.Service] = sh.FailOpen
		for j, dh := range sh.Destinations {
			ap := netip.AddrPortFrom(dh.Address, dh.Port)
			d := metricDest{service: sh.Service, health: dh, plan: checks[i].Destinations[j].Weight, drained: drained[drainKey{sh.Service, ap.String()}]}
			for _, s := range st {
				for k, x := range s.Destinations {
					if s.Service == sh.Service && x.Address == dh.Address && x.Port == dh.Port {
						d.kernel = &s.Destinations[k]
					}
				}
			}
			dests = append(dests, d)
		}
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# HELP tunplan_watcher_heartbeat_timestamp_seconds When the watcher last wrote its report.\n# TYPE tunplan_watcher_heartbeat_timestamp_seconds gauge\ntunplan_watcher_heartbeat_timestamp_seconds %d\n", h.Heartbeat.Unix())
	b.WriteString("# HELP tunplan_service_fail_open Whether every destination of the service fails its checks, so all keep their plan weight.\n# TYPE tunplan_service_fail_open gauge\n")
	for _, sh := range h.Services {
		fmt.Fprintf(&b, "tunplan_service_fail_open{service=%s} %d\n", label(sh.Service.String()), flag(failOpen[sh.Service]))
	}
	for _, f := range families {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", f.name, f.help, f.name, f.typ)
		for _, d := range dests {
			if v, ok := f.value(d); ok {
				fmt.Fprintf(&b, "%s{service=%s,destination=%s} %d\n", f.name, label(d.service.String()), label(netip.AddrPortFrom(d.health.Address, d.health.Port).String()), v)
			}
		}
	}
	return b.Bytes()
}

// label is a label value, quoted as the text format wants.
func label(v string) string { return `"` + labelEscapes.Replace(v) + `"` }

var labelEscapes = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// writeMetrics writes the text file where the configuration says, if it says, and only where its
// directory exists (the textfile collector's, which node_exporter's package makes): once told, a
// missing directory is not logged again until it comes. The file is replaced by a rename, so the
// collector never reads half of it; it is not synced (it is rewritten every few seconds).
func (w *Watcher) writeMetrics() error {
	path := w.spec.Metrics
	if path == "" {
		return nil
	}
	if _, err := os.Stat(filepath.Dir(path)); err != nil {
		if !w.noMetricsDir {
			w.logf("metrics: %v: no Prometheus text file is written until it exists (install prometheus-node-exporter, or set metrics_file)", err)
		}
		w.noMetricsDir = true
		return nil
	}
	w.noMetricsDir = false
	k, err := w.ipvs()
	if err != nil {
		return err
	}
	keys := make([]protocol.Key, len(w.spec.Checks))
	for i, c := range w.spec.Checks {
		keys[i] = c.Service
	}
	st, err := ipvs.Status(k, keys)
	if err != nil {
		return err
	}
	tmp := path + ".tmp" // not *.prom: the collector skips it
	if err := os.WriteFile(tmp, renderMetrics(w.health(), w.spec.Checks, st, w.readDrains()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
