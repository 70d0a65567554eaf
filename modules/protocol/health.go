package protocol

import (
	"net/netip"
	"time"
)

// HealthCheck is how a director checks the destinations of one of its virtual services (the plan's
// health_check block), as its watcher (`tunplan-helper watch`) runs it. A destination that fails
// Fall checks in a row is quiesced (weight 0: no new connections, established ones finish) until
// it passes Rise in a row. Each destination is checked
// through the service's own tunnel: the checker's socket carries the destination's probe mark, and
// the probe service of that mark (an IPVS firewall-mark service with that one destination, in
// State.Services) wraps the check as it wraps a client's packet. The check connects from Source to
// the VIP at Port.
type HealthCheck struct {
	Service      Key                  `json:"service"` // the checked service
	Type         CheckType            `json:"type"`
	Port         uint16               `json:"port"`                    // the port checked: the service's (a firewall-mark service's first)
	Source       netip.Addr           `json:"source"`                  // the director's address of the VIP's family: where checks leave from
	VIP          netip.Addr           `json:"vip"`                     // where checks connect to (a firewall-mark service's first VIP)
	Path         string               `json:"path,omitempty"`          // http, https: the request's path
	Host         string               `json:"host,omitempty"`          // http, https: the Host header (and TLS server name); "" is the VIP
	ExpectStatus int                  `json:"expect_status,omitempty"` // http, https
	ExpectBody   string               `json:"expect_body,omitempty"`   // http, https: a substring of the body; "" checks none
	Payload      Payload              `json:"payload,omitzero"`        // udp: the datagram sent and the reply expected (the service's probe block)
	IntervalMS   int                  `json:"interval_ms"`
	TimeoutMS    int                  `json:"timeout_ms"`
	Fall         int                  `json:"fall"`                 // consecutive failures that take a destination out
	Rise         int                  `json:"rise"`                 // consecutive successes that bring it back
	OnFailure    FailureAction        `json:"on_failure,omitempty"` // what taking it out is: weight 0, or leaving the service; "" is Quiesce
	Destinations []CheckedDestination `json:"destinations"`         // sorted by Address, Port
}

// CheckedDestination is one destination of a checked service: its plan weight, which the watcher
// gives back when it is healthy, and the mark of its probe service.
type CheckedDestination struct {
	Address netip.Addr `json:"address"`
	Port    uint16     `json:"port"`
	Weight  uint32     `json:"weight"`
	Mark    uint32     `json:"mark"`
	Tunnel  Tunnel     `json:"tunnel,omitzero"` // the service's: what a removed destination is added back with
}

// FailureAction is what the watcher does with a destination that fails its checks.
type FailureAction string

const (
	// Quiesce gives it weight 0: no new connection goes to it, established ones finish.
	Quiesce FailureAction = "quiesce"
	// Remove takes it out of the service, as keepalived does: the packets of its established
	// connections are dropped (expire_nodest_conn says whether their entries go at once) until it is
	// added back.
	Remove FailureAction = "remove"
)

// FailureActions are the on_failure values a plan may name.
var FailureActions = []string{string(Quiesce), string(Remove)}

func (a *FailureAction) UnmarshalText(b []byte) error {
	return enum(a, b, "failure action", Quiesce, Remove)
}

// The probe services' marks come from a range that plans may not use for their own firewall-mark
// services: ProbeMarkBase up to ProbeMarkBase+ProbeMarks-1.
const (
	ProbeMarkBase uint32 = 0x74700000 // "tp" in the high bytes
	ProbeMarks    uint32 = 1 << 16
)

// ProbeMark tells whether a firewall mark is one of the probe services'.
func ProbeMark(m uint32) bool { return m >= ProbeMarkBase && m < ProbeMarkBase+ProbeMarks }

// CheckType is what a health check does.
type CheckType string

const (
	CheckTCP   CheckType = "tcp"   // a TCP connection to VIP:port is accepted
	CheckHTTP  CheckType = "http"  // GET path answers expect_status (and holds expect_body)
	CheckHTTPS CheckType = "https" // the same over TLS (the certificate is not verified: the check is of the path, not of PKI)
	CheckUDP   CheckType = "udp"   // the service's probe datagram is answered by a reply that starts with its expect bytes
)

// CheckTypes are the check types a plan may name ("none" turns checking off and reaches no host).
var CheckTypes = []string{"tcp", "http", "https", "udp", "none"}

func (t *CheckType) UnmarshalText(b []byte) error {
	return enum(t, b, "check type", CheckTCP, CheckHTTP, CheckHTTPS, CheckUDP)
}

// Where the watcher finds its checks, runs from and reports. WatchConfig is one of a director's
// boot files, written from State.Checks; HealthFile is runtime state, gone at a reboot.
const (
	WatchConfig = StateDir + "/watch.json"
	WatchUnit   = "/etc/systemd/system/tunplan-watch.service"
	WatchLink   = "/etc/systemd/system/multi-user.target.wants/tunplan-watch.service" // enables it, as systemctl enable would
	HealthFile  = "/run/tunplan/health.json"
	// WatchLog is the watcher's output on a host without systemd, where the helper runs it as a
	// process of its own.
	WatchLog = "/var/log/tunplan-watch.log"
)

// WatchSpec is the watcher's configuration file (WatchConfig): the director's checks, and where it
// writes its Prometheus text file ("" none).
type WatchSpec struct {
	Checks  []HealthCheck `json:"checks"`
	Metrics string        `json:"metrics,omitempty"`
}

// DefaultMetrics is where a director's watcher writes its Prometheus text file unless the plan says
// otherwise: the directory Debian's prometheus-node-exporter reads with its textfile collector. The
// watcher writes it only where that directory exists.
const DefaultMetrics = "/var/lib/prometheus/node-exporter/tunplan.prom"

// Health is what the watcher reports in HealthFile: when it last wrote (its heartbeat), and each
// checked destination's state. It is runtime state: the plan says what should be, this what is true
// now.
type Health struct {
	Heartbeat time.Time       `json:"heartbeat"`
	PID       int             `json:"pid"`
	Services  []ServiceHealth `json:"services"`
}

// ServiceHealth is one checked service. FailOpen is set while every destination fails its check:
// the watcher then keeps them all at their plan weight (a checker that cannot see must not take a
// whole service down).
type ServiceHealth struct {
	Service      Key                 `json:"service"`
	FailOpen     bool                `json:"fail_open,omitempty"`
	Destinations []DestinationHealth `json:"destinations"`
}

// DestinationHealth is one checked destination: whether it passes its check (Healthy, since when),
// whether the watcher holds it at weight 0 (Quiesced), the last check's result, and counts.
type DestinationHealth struct {
	Address  netip.Addr `json:"address"`
	Port     uint16     `json:"port"`
	Healthy  bool       `json:"healthy"`
	Quiesced bool       `json:"quiesced,omitempty"`
	Since    time.Time  `json:"since"`
	Last     string     `json:"last"` // "ok (3ms)", "connect: connection refused", "status 503"
	Checks   uint64     `json:"checks"`
	Failures uint64     `json:"failures"`
}

// Fresh tells whether the watcher wrote h recently enough to be believed at now: within three of
// its shortest check intervals (and a second for the write itself).
func (h Health) Fresh(now time.Time, spec WatchSpec) bool {
	shortest := time.Hour
	for _, c := range spec.Checks {
		shortest = min(shortest, time.Duration(c.IntervalMS)*time.Millisecond)
	}
	return now.Sub(h.Heartbeat) <= 3*shortest+time.Second
}

// Held is a destination held back by runtime state (at weight 0, or removed), as a diff or an
// apply reports it: not drift. Weight is its plan weight, which it gets back once it passes its checks and is undrained.
type Held struct {
	Service Key        `json:"service"`
	Address netip.Addr `json:"address"`
	Port    uint16     `json:"port"`
	Weight  uint32     `json:"weight"`
	By      HoldCause  `json:"by"`
	Removed bool       `json:"removed,omitempty"` // out of the service (health, on_failure remove), not at weight 0
	Since   time.Time  `json:"since"`
	Reason  string     `json:"reason"` // health: the last check's result; drain: who drained it
}

// HoldCause is what holds a destination at weight 0.
type HoldCause string

const (
	HeldByHealth HoldCause = "health" // it fails its checks (the watcher quiesced it)
	HeldByDrain  HoldCause = "drain"  // an operator drained it (tunplan drain)
)

func (c *HoldCause) UnmarshalText(b []byte) error {
	return enum(c, b, "hold cause", HeldByHealth, HeldByDrain)
}
