package protocol

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/tunplan/tunplan/modules/change"
)

// Request is the JSON document the CLI writes to the helper's standard input, one per line.
type Request struct {
	Op      Op     `json:"op"`
	Host    string `json:"host"`             // the plan's name for this host
	Desired State  `json:"desired"`          // for diff and apply
	RunID   string `json:"run_id,omitempty"` // applies with the same RunID amend one generation
	Phase   Phase  `json:"phase,omitempty"`  // for apply
	To      *int   `json:"to,omitempty"`     // for rollback: the generation to restore; nil: the one before the current
	Actor   string `json:"actor,omitempty"`  // user@machine running the CLI, recorded in generations
	// LockWaitMS is how long apply and rollback wait for another run's lock; 0 fails at once.
	LockWaitMS int64 `json:"lock_wait_ms,omitempty"`
	// Claim makes a diff take the host lock and claim the host for this request's SSH connection:
	// the diff that opens an apply, so a concurrent run is turned away before either changes a host.
	Claim bool `json:"claim,omitempty"`
	// DryRun makes a destroy report what it would change, and change nothing.
	DryRun bool `json:"dry_run,omitempty"`
	// KeepHistory makes a destroy keep StateDir (its generations) and record the destroy as one.
	KeepHistory bool `json:"keep_history,omitempty"`
	// Probes are what a probe sends (OpProbe, to a director); TimeoutMS bounds the wait for each.
	Probes    []Probe `json:"probes,omitempty"`
	TimeoutMS int64   `json:"timeout_ms,omitempty"`
	// Explain asks a realserver (OpExplain) about the paths to it that failed, or all with --explain.
	Explain []Path `json:"explain,omitempty"`
	// Drains are the destinations a drain or an undrain is about (OpDrain, OpUndrain), on this director.
	Drains []Drain `json:"drains,omitempty"`
}

// Probe is one destination of a service to test as IPVS would reach it: a TCP SYN to VIP:Port from
// Source (the director's data address), in IPIP to RIP; for a UDP service whose plan has a probe
// block, a datagram carrying Payload.Send instead (a UDP probe without it is not sent).
type Probe struct {
	Protocol string     `json:"protocol"` // "tcp" or "udp"
	VIP      netip.Addr `json:"vip"`
	Port     uint16     `json:"port"`
	RIP      netip.Addr `json:"rip"`
	Source   netip.Addr `json:"source"`
	Payload             // UDP only
}

// Payload is what a UDP service's probe sends and expects back: the plan's probe block.
type Payload struct {
	Send   Bytes `json:"send,omitempty"`   // the datagram's payload, 1 to MaxProbePayload bytes
	Expect Bytes `json:"expect,omitempty"` // the bytes the reply must start with; empty: any reply
}

// MaxProbePayload is the most a UDP probe sends or expects: its datagram, with IPv4 and UDP headers
// (28 bytes) and IPIP's (20), fits an Ethernet MTU of 1500 with room to spare.
const MaxProbePayload = 1400

// Bytes is binary data held in a string, so that a Probe stays comparable. Its JSON is hex.
type Bytes string

// String is the bytes quoted as a Go string, for logs: text stays readable, the rest is escaped.
func (b Bytes) String() string { return strconv.Quote(string(b)) }

func (b Bytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString([]byte(b))), nil }

func (b *Bytes) UnmarshalText(t []byte) error {
	d, err := hex.DecodeString(string(t))
	if err != nil {
		return fmt.Errorf("bytes: %w", err)
	}
	*b = Bytes(d)
	return nil
}

// ProbeResult is what one probe saw.
type ProbeResult struct {
	Probe
	Outcome   ProbeOutcome `json:"outcome"`
	RTTMicros int64        `json:"rtt_us,omitempty"`   // ok, refused, wrong reply: from the SYN (or datagram) to the answer
	MSS       uint16       `json:"mss,omitempty"`      // ok: the MSS the realserver advertised
	PathMTU   int          `json:"path_mtu,omitempty"` // the MTU of the director's route to RIP (route MTU, else its device's)
	Detail    string       `json:"detail,omitempty"`   // what else was seen (an ICMP error, …)
}

// Path is the way to a realserver that an explanation is about: the VIP:port a service listens on
// and the director's address the replies go to.
type Path struct {
	Protocol string     `json:"protocol"`
	VIP      netip.Addr `json:"vip"`
	Port     uint16     `json:"port"`
	Director netip.Addr `json:"director"`
}

// Fact is one thing read on a realserver that decides whether it answers through the tunnel, in
// the order they matter; the first one not OK is the cause.
type Fact struct {
	Name  string `json:"name"`  // "ipip loaded", "tunl0 up", "VIP on tunl0", "rp_filter for tunl0", "listening on VIP:port", "route to the director", "arp"
	Value string `json:"value"` // what was read: "1 (net.ipv4.conf.all.rp_filter=1)", "nginx listens on 198.18.10.182:80 only"
	OK    bool   `json:"ok"`
	Cause string `json:"cause,omitempty"` // when not OK: why the path fails, as a sentence
}

// LastRun is the outcome of the latest apply or rollback, recorded on the host (StateDir/last-run.json)
// before the helper answers, so a run whose CLI lost the connection is still known to the next one.
type LastRun struct {
	Op         Op      `json:"op"`
	RunID      string  `json:"run_id,omitempty"`
	Actor      string  `json:"actor,omitempty"`
	Time       string  `json:"time"`                 // RFC 3339, when it finished
	Outcome    Outcome `json:"outcome"`              // as Response.Outcome, or FailedBeforeChanging
	Error      string  `json:"error,omitempty"`      // why it did not apply
	Changes    int     `json:"changes"`              // changes made (or attempted, for restored runs)
	Generation int     `json:"generation,omitempty"` // the generation current afterwards
	Reported   bool    `json:"reported"`             // the helper delivered its answer to the CLI
}

// Generation is one recorded state of the managed objects on a host.
type Generation struct {
	N       int    `json:"n"`
	Time    string `json:"time"` // RFC 3339
	Kind    Kind   `json:"kind"`
	RunID   string `json:"run_id,omitempty"`
	Actor   string `json:"actor,omitempty"`
	Changes int    `json:"changes"`
	State   State  `json:"state"` // the managed objects as they were after this generation was made
}

// Response is the JSON document the helper writes to its standard output, one per request.
type Response struct {
	Host        string          `json:"host"`
	Changes     []change.Change `json:"changes"`               // diff: what would change; apply/rollback: what was changed
	Generation  int             `json:"generation,omitempty"`  // apply/rollback: the generation now current
	Generations []Generation    `json:"generations,omitempty"` // history
	Outcome     Outcome         `json:"outcome,omitempty"`     // apply/rollback
	Warnings    []string        `json:"warnings,omitempty"`
	// Held are the destinations a director's watcher holds at weight 0 (diff, apply): not drift.
	Held      []Held        `json:"held,omitempty"`
	LastRun   *LastRun      `json:"last_run,omitempty"`  // diff: the latest apply or rollback, when it needs telling (not reported, or not applied)
	Inventory *Inventory    `json:"inventory,omitempty"` // inspect
	Probes    []ProbeResult `json:"probes,omitempty"`    // probe
	Facts     []PathFacts   `json:"facts,omitempty"`     // explain
	Doctor    *DoctorReport `json:"doctor,omitempty"`    // doctor
	Status    *Status       `json:"status,omitempty"`    // status, drain, undrain
	Error     string        `json:"error,omitempty"`
}

// Inventory is what `tunplan import` reads of a host.
type Inventory struct {
	Services []Service `json:"services"` // IPv4 TCP/UDP services whose destinations all forward by tunnel
	// Skipped are the other IPVS services, each with why it was left out ("fwmark 3: not a TCP or
	// UDP service on an IPv4 address", "tcp/198.18.0.9:80: destination 198.18.1.5:80 forwards by masq").
	Skipped []string `json:"skipped,omitempty"`
	// TunnelAddresses are the addresses on the tunnel device (tunl0): a realserver's VIPs.
	TunnelAddresses []netip.Prefix `json:"tunnel_addresses,omitempty"`
	// Addresses are the host's IPv4 addresses on every other device, to match a director's
	// destinations to the realserver that holds them.
	Addresses []netip.Addr `json:"addresses,omitempty"`
}

// PathFacts are the facts a realserver read about one path to it.
type PathFacts struct {
	Path  Path   `json:"path"`
	Facts []Fact `json:"facts"`
}
