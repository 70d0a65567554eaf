package protocol

import (
	"fmt"
	"slices"
	"strings"
)

// enum decodes a text value into one of the known values of its type; anything else is an error,
// so a newer peer's value is never mistaken for a known one.
func enum[T ~string](dst *T, b []byte, what string, known ...T) error {
	for _, k := range known {
		if string(k) == string(b) {
			*dst = k
			return nil
		}
	}
	return fmt.Errorf("unknown %s %q", what, b)
}

// Op is what the CLI asks of the helper.
type Op string

const (
	OpDiff     Op = "diff"     // read facts, return the changes that apply would make; change nothing
	OpApply    Op = "apply"    // snapshot, apply the changes (restore the snapshot on error), record a generation
	OpRollback Op = "rollback" // restore generation To (nil: the one before the current)
	OpHistory  Op = "history"  // list generations
	OpDestroy  Op = "destroy"  // remove everything tunplan owns on the host (DryRun: only say what)
	OpInspect  Op = "inspect"  // read the host's IPVS table and tunnel addresses for `tunplan import`; change nothing
	OpProbe    Op = "probe"    // director: send each Probe through the tunnel and report what answered
	OpExplain  Op = "explain"  // realserver: read the facts that decide whether it answers through the tunnel
	OpDoctor   Op = "doctor"   // read every state file tunplan keeps on the host and report those it cannot use; change nothing
	OpStatus   Op = "status"   // director: read the desired services' weights and counters, the watcher's report and the drains; change nothing
	OpDrain    Op = "drain"    // director: record Drains as operator overrides and set their weights to 0
	OpUndrain  Op = "undrain"  // director: forget the Drains and give them back their effective weight
)

func (o *Op) UnmarshalText(b []byte) error {
	return enum(o, b, "operation", OpDiff, OpApply, OpRollback, OpHistory, OpDestroy, OpInspect, OpProbe, OpExplain, OpDoctor, OpStatus, OpDrain, OpUndrain)
}

// ProbeOutcome is what a probe of one destination saw.
type ProbeOutcome string

const (
	ProbeOK        ProbeOutcome = "ok"         // SYN-ACK (UDP: the expected reply) from VIP:port, straight back from the realserver
	ProbeRefused   ProbeOutcome = "refused"    // RST (UDP: ICMP port unreachable) for VIP:port: nothing listens there
	ProbeNoAnswer  ProbeOutcome = "no answer"  // nothing within the timeout
	ProbeNotProbed ProbeOutcome = "not probed" // a UDP destination without a probe payload in the plan
	// UDP: the realserver answered through the tunnel, but not as a client needs: the reply does not
	// start with the expected bytes, or it came from the RIP instead of the VIP.
	ProbeWrongReply ProbeOutcome = "wrong reply"
)

func (o *ProbeOutcome) UnmarshalText(b []byte) error {
	return enum(o, b, "probe outcome", ProbeOK, ProbeRefused, ProbeNoAnswer, ProbeNotProbed, ProbeWrongReply)
}

// Phase limits an apply to part of the changes, so the CLI can order hosts:
// realservers "add" → directors "all" → realservers "remove".
type Phase string

const (
	PhaseAll    Phase = ""
	PhaseAdd    Phase = "add"    // only Create and Update changes
	PhaseRemove Phase = "remove" // only Delete changes
)

func (p *Phase) UnmarshalText(b []byte) error {
	return enum(p, b, "phase", PhaseAll, PhaseAdd, PhaseRemove)
}

// Outcome is how an apply or rollback ended on a host.
type Outcome string

const (
	OutcomeNone          Outcome = ""               // no apply or rollback answered (diff, history, or no answer)
	Applied              Outcome = "applied"        // changes made, a generation recorded
	Unchanged            Outcome = "unchanged"      // nothing to change
	Restored             Outcome = "restored"       // a change failed and the snapshot was put back
	RestoreFailed        Outcome = "restore-failed" // a change failed and so did putting the snapshot back
	FailedBeforeChanging Outcome = "failed"         // LastRun only: refused or failed before any change
)

func (o *Outcome) UnmarshalText(b []byte) error {
	return enum(o, b, "outcome", OutcomeNone, Applied, Unchanged, Restored, RestoreFailed, FailedBeforeChanging)
}

// Kind says how a generation came to be.
type Kind string

const (
	KindBaseline Kind = "baseline" // the managed objects before tunplan first changed the host
	KindApply    Kind = "apply"
	KindRollback Kind = "rollback"
	KindDestroy  Kind = "destroy" // everything tunplan owned removed (kept with --keep-history)
)

func (k *Kind) UnmarshalText(b []byte) error {
	return enum(k, b, "generation kind", KindBaseline, KindApply, KindRollback, KindDestroy)
}

// Role is what a host does in LVS-TUN.
type Role string

const (
	Director   Role = "director"   // runs IPVS and tunnels the VIP's packets to the realservers
	Realserver Role = "realserver" // decapsulates on tunl0 (which carries the VIP) and answers the client directly
)

func (r *Role) UnmarshalText(b []byte) error {
	return enum(r, b, "role", Director, Realserver)
}

// Roles are a host's roles, director before realserver, without duplicates.
type Roles []Role

// Has reports whether r is one of the roles.
func (rs Roles) Has(r Role) bool { return slices.Contains(rs, r) }

// String joins the roles with "+": "director", "realserver", "director+realserver".
func (rs Roles) String() string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, "+")
}
