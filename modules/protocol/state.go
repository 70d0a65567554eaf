// Package protocol is the wire protocol between the tunplan CLI and its helper, and the vocabulary
// both sides share: the state tunplan manages on a host (State and the objects in it), the requests
// and responses, generations and outcomes, and where the helper keeps its files. It is pure Go, with
// no netlink and nothing Linux-only, so the CLI builds for every platform; only the helper's engine
// (modules/host and the kernel modules) touches the kernel.
package protocol

import (
	"net/netip"
	"strconv"
)

// State is what the plan wants on one host (and, read back, what a host has of it).
type State struct {
	Modules  []string   `json:"modules,omitempty"`  // kernel modules that must be loaded: "ipip", "ip_vs", "ip_vs_rr"
	Sysctls  []Sysctl   `json:"sysctls,omitempty"`  // sorted by Key
	Links    []Link     `json:"links,omitempty"`    // devices that must be up and carry addresses (tunl0 + VIP/32)
	Services []Service  `json:"services,omitempty"` // IPVS virtual services with their destinations
	Routes   []RouteMSS `json:"routes,omitempty"`   // the advertised MSS (advmss) of routes: a realserver's tunnel_mss
	Fou      []FouPort  `json:"fou,omitempty"`      // foo-over-UDP receive ports (a GUE realserver's), sorted by Port
	Marks    []Mark     `json:"marks,omitempty"`    // a director's firewall-mark rules (fwmark services), sorted by Protocol, Address, Port
	// MarkTable is, in facts and snapshots only, the table that holds the mark rules, when there is
	// one: what it holds besides them.
	MarkTable *MarkTable `json:"mark_table,omitempty"`
	// Checks are a director's health checks: declared, not read from the kernel. The helper makes
	// its watcher's configuration of them (a file in Files); a generation keeps them as applied.
	Checks []HealthCheck `json:"checks,omitempty"`
	// Metrics is where a director with Checks has its watcher write a Prometheus text file of them
	// (MetricsText); "" writes none. Declared, like Checks.
	Metrics string `json:"metrics,omitempty"`
	// Files are whole files tunplan owns: what rebuilds the state at boot. The helper adds them to
	// the state the plan asks for; a plan never names them.
	Files []File `json:"files,omitempty"`
}

// Empty reports whether the state asks for nothing on the host (files aside: they follow the rest).
func (s State) Empty() bool {
	return len(s.Modules) == 0 && len(s.Sysctls) == 0 && len(s.Links) == 0 && len(s.Services) == 0 && len(s.Routes) == 0 && len(s.Fou) == 0 && len(s.Marks) == 0
}

// DefaultRoute names, as a RouteMSS's Dst, every IPv4 default route of the main table: the routes a
// realserver's direct replies to clients leave by.
const DefaultRoute = "default"

// RouteMSS is the MSS a host advertises in the SYN-ACKs it sends along a route: the route's advmss
// metric (`ip route change default … advmss 1440`). Only the metric is owned: the route itself (its
// gateway, device and every other attribute) is never changed, created or removed.
type RouteMSS struct {
	Dst     string `json:"dst"`               // DefaultRoute
	AdvMSS  uint32 `json:"advmss"`            // 0: no advmss metric (the kernel offers the route's MTU less 40)
	Mixed   bool   `json:"mixed,omitempty"`   // facts and snapshots only: the routes disagree; AdvMSS is the first's (lowest metric)
	Missing bool   `json:"missing,omitempty"` // facts and snapshots only: there was no such route
}

// File is a file tunplan owns: a regular file with its content, a symlink, or (Missing) no file.
type File struct {
	Path    string `json:"path"`
	Content string `json:"content,omitempty"`
	Link    string `json:"link,omitempty"`    // a symlink to this target
	Missing bool   `json:"missing,omitempty"` // there is (or must be) no file at Path
}

// Sysctl is one kernel parameter, named as sysctl(8) names it: "net.ipv4.conf.all.rp_filter".
type Sysctl struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Link is a device that must be up and carry Addresses. Only the listed addresses are owned: other
// addresses on the device are left alone.
type Link struct {
	Name      string         `json:"name"`              // "tunl0"
	Addresses []netip.Prefix `json:"addresses"`         // VIP/32
	Down      bool           `json:"down,omitempty"`    // facts and snapshots only: the device was down
	Missing   bool           `json:"missing,omitempty"` // facts and snapshots only: there was no such device
}

// Service is one IPVS virtual service (ipvsadm -A) with its destinations (ipvsadm -a): a VIP, port
// and protocol, IPv4 or IPv6, or a firewall-mark service (ipvsadm -A -f), which takes the packets
// the director's mark rules (Marks) give its mark.
type Service struct {
	Protocol     string        `json:"protocol"`              // "tcp" or "udp"; "" for a firewall-mark service
	Address      netip.Addr    `json:"address"`               // the VIP; for a firewall-mark service, the unspecified address of its family (0.0.0.0 or ::)
	Port         uint16        `json:"port"`                  // 0 for a firewall-mark service
	FWMark       uint32        `json:"fwmark,omitempty"`      // a firewall-mark service's mark
	Scheduler    string        `json:"scheduler"`             // rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, mh, fo, ovf
	Persistence  uint32        `json:"persistence,omitempty"` // seconds; 0 = not persistent (ipvsadm -p)
	Destinations []Destination `json:"destinations"`          // sorted by Address, Port
}

// Destination is one realserver of a service.
type Destination struct {
	Address netip.Addr `json:"address"`
	Port    uint16     `json:"port"`
	Weight  uint32     `json:"weight"`  // 0..65535; 0 drains
	Forward string     `json:"forward"` // "tunnel" (ipvsadm -i); facts may also read "route", "masq", "local"
	// Tunnel is how a tunnel destination's packets are wrapped; the zero value is IPIP, so states
	// written before GUE and GRE existed read as they were meant.
	Tunnel Tunnel `json:"tunnel,omitzero"`
}

// Tunnel is how the director encapsulates the packets it forwards to a destination: IPVS's tunnel
// type, port and flags (IPVS_DEST_ATTR_TUN_TYPE, TUN_PORT, TUN_FLAGS; ipvsadm --tun-type,
// --tun-port, --tun-nocsum/--tun-csum/--tun-remcsum). Only what the kernel acts on is kept: the
// port of a GUE tunnel, the checksum of GUE and GRE, the remote checksum of GUE.
type Tunnel struct {
	Type           TunnelType `json:"type"`
	Port           uint16     `json:"port,omitempty"`            // GUE: the UDP port the realserver's fou listener takes
	Checksum       bool       `json:"checksum,omitempty"`        // GUE, GRE: the outer UDP or GRE header carries a checksum (TUN_FLAGS CSUM)
	RemoteChecksum bool       `json:"remote_checksum,omitempty"` // GUE: remote checksum offload (TUN_FLAGS REMCSUM)
}

// String renders the tunnel as a change shows it: "ipip", "gue:6080", "gue:6080,csum,remcsum",
// "gre,csum".
func (t Tunnel) String() string {
	s := t.Type.String()
	if t.Type == TunnelGUE || t.Port != 0 {
		s += ":" + strconv.FormatUint(uint64(t.Port), 10)
	}
	if t.Checksum {
		s += ",csum"
	}
	if t.RemoteChecksum {
		s += ",remcsum"
	}
	return s
}

// TunnelType is IPVS's tunnel type. The zero value is IPIP: it reads and writes as "ipip".
type TunnelType string

const (
	TunnelIPIP TunnelType = ""    // IP in IP, protocol 4: the realserver decapsulates on tunl0
	TunnelGUE  TunnelType = "gue" // Generic UDP Encapsulation (Linux 5.2): UDP to the tunnel port, then IPIP
	TunnelGRE  TunnelType = "gre" // GRE, protocol 47 (Linux 5.3): the realserver decapsulates on gre0
)

// TunnelTypes are the tunnel types as a plan and the JSON name them.
var TunnelTypes = []string{"ipip", "gue", "gre"}

func (t TunnelType) String() string {
	if t == TunnelIPIP {
		return "ipip"
	}
	return string(t)
}

func (t TunnelType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

func (t *TunnelType) UnmarshalText(b []byte) error {
	if string(b) == "ipip" {
		*t = TunnelIPIP
		return nil
	}
	return enum(t, b, "tunnel type", TunnelIPIP, TunnelGUE, TunnelGRE)
}

// FouPort is a foo-over-UDP receive port (`ip fou add port 6080 gue`): the kernel takes the UDP
// datagrams to Port on any local IPv4 address and decapsulates them. A GUE port hands the inner
// packet to the protocol its GUE header names: IPIP, so that tunl0 receives what IPVS sent.
type FouPort struct {
	Port     uint16  `json:"port"`
	Type     FouType `json:"type"`
	Protocol uint8   `json:"protocol,omitempty"` // direct only: the IP protocol of the payload (ip fou add … ipproto 4)
}

// String renders the listener as a change shows it: "gue", "direct ipproto 4".
func (f FouPort) String() string {
	if f.Type == FouDirect {
		return "direct ipproto " + strconv.Itoa(int(f.Protocol))
	}
	return string(f.Type)
}

// FouType is how a fou port reads its datagrams.
type FouType string

const (
	FouGUE    FouType = "gue"    // a GUE header names the payload's protocol: what tunplan makes
	FouDirect FouType = "direct" // the payload is of one fixed IP protocol; facts may read one made by hand
)

func (f *FouType) UnmarshalText(b []byte) error {
	return enum(f, b, "fou type", FouGUE, FouDirect)
}

// Key identifies a virtual service. Its JSON is a Service's without the rest: a service decodes
// into its Key.
type Key struct {
	Protocol string     `json:"protocol"`
	Address  netip.Addr `json:"address"`
	Port     uint16     `json:"port"`
	FWMark   uint32     `json:"fwmark,omitempty"`
}

// String renders the key as changes show it: "tcp/198.18.48.180:80", "tcp/[2001:2::180]:80",
// "fwmark/1" (IPv4) and "fwmark6/1" (IPv6).
func (k Key) String() string {
	if k.FWMark != 0 {
		name := "fwmark/"
		if k.Address.Is6() {
			name = "fwmark6/"
		}
		return name + strconv.FormatUint(uint64(k.FWMark), 10)
	}
	return k.Protocol + "/" + netip.AddrPortFrom(k.Address, k.Port).String()
}

// Key returns the service's identity.
func (s Service) Key() Key { return Key{s.Protocol, s.Address, s.Port, s.FWMark} }

// Mark is one rule of the table a director's fwmark services need (nftables: table inet tunplan):
// packets of Protocol to Address:Port get the firewall mark Mark, so that the IPVS service of that
// mark takes them.
type Mark struct {
	Protocol string     `json:"protocol"` // "tcp" or "udp"
	Address  netip.Addr `json:"address"`  // a VIP of the service
	Port     uint16     `json:"port"`
	Mark     uint32     `json:"mark"`
}

// MarkTable is what facts read of the table of the mark rules besides the rules themselves.
type MarkTable struct {
	Foreign int `json:"foreign,omitempty"` // objects in it that are not mark rules of tunplan's (rules, chains, flags): an apply removes them
}

// Match renders what the rule matches, as changes name it: "tcp/198.18.48.190:443".
func (m Mark) Match() string {
	return m.Protocol + "/" + netip.AddrPortFrom(m.Address, m.Port).String()
}

// Attrs renders what a change of the service shows: "scheduler=rr persistence=0".
func (s Service) Attrs() string {
	return "scheduler=" + s.Scheduler + " persistence=" + strconv.FormatUint(uint64(s.Persistence), 10)
}

// Attrs renders what a change of the destination shows: "weight=1 fwd=tunnel", and for a tunnel
// other than a plain IPIP one, "weight=1 fwd=tunnel tun=gue:6080".
func (d Destination) Attrs() string {
	s := "weight=" + strconv.FormatUint(uint64(d.Weight), 10) + " fwd=" + d.Forward
	if d.Tunnel != (Tunnel{}) {
		s += " tun=" + d.Tunnel.String()
	}
	return s
}

// Where the helper keeps its files on a host, and the device LVS-TUN decapsulates on. Both sides
// use them: the CLI installs the helper into HelperDir, the helper keeps its state in StateDir.
const (
	StateDir  = "/var/lib/tunplan"
	HelperDir = StateDir + "/bin"
	// HelperPath is the helper the boot units run: a hard link to the newest helper installed, so
	// an upgrade switches it by one rename and a unit never names a helper that install removes.
	HelperPath  = HelperDir + "/tunplan-helper"
	SysctlFile  = "/etc/sysctl.d/99-tunplan.conf"
	RestoreUnit = "/etc/systemd/system/tunplan-restore.service"                      // the oneshot unit that rebuilds the latest generation at boot
	RestoreLink = "/etc/systemd/system/sysinit.target.wants/tunplan-restore.service" // enables it, as systemctl enable would
	// RestoreLateUnit restores again once the network is online, for what needs it (the advmss of
	// the default routes, which do not exist before); RestoreLateLink enables it.
	RestoreLateUnit = "/etc/systemd/system/tunplan-restore-late.service"
	RestoreLateLink = "/etc/systemd/system/multi-user.target.wants/tunplan-restore-late.service"
	ModulesLoad     = "/etc/modules-load.d/tunplan.conf" // kernel modules systemd-modules-load loads at boot
	TunnelDevice    = "tunl0"                            // the IPIP fallback device of the ipip module: the realservers' VIP device, the directors' default
	GREDevice       = "gre0"                             // the GRE fallback device of the ip_gre module: a GRE realserver's VIP device
	Tunnel6Device   = "ip6tnl0"                          // the ip6ip6 fallback device of the ip6_tunnel module: an IPv6 VIP's device
	ForwardTunnel   = "tunnel"
)

// FallbackTunnel tells whether a device is one of the tunnel modules' fallback devices (tunl0, gre0,
// ip6tnl0), which tunplan brings up; any other device a VIP is put on (vip_device) is the host's own.
func FallbackTunnel(name string) bool {
	return name == TunnelDevice || name == GREDevice || name == Tunnel6Device
}
