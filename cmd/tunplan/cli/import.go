package cli

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/fatih/color"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/spf13/cobra"
	"github.com/zclconf/go-cty/cty"

	"github.com/tunplan/tunplan/inventory"
	"github.com/tunplan/tunplan/inventory/fleet"
	"github.com/tunplan/tunplan/modules/protocol"
	"github.com/tunplan/tunplan/plans"
)

type importOptions struct {
	*globalOptions
	directors   []string
	realservers []string
	user        string
	port        int
	identity    []string
	knownHosts  string
	sudo        bool
	jump        string
	output      string
}

const defaultKnownHosts = "~/.ssh/known_hosts"

func newImport(g *globalOptions) *cobra.Command {
	o := &importOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "import --director HOST[,HOST] [--realserver HOST,...] [-o plan.hcl]",
		Short: "Write a plan from the LVS-TUN set-up the hosts already have",
		Long: `import reads the live IPVS table of the directors and the tunl0 addresses of the realservers, and
writes the plan that describes them: one virtual_service per IPv4 TCP or UDP service whose
destinations all forward by tunnel, with its scheduler, persistence and weights, and a host block
for every director and realserver. The plan validates as written, and applying it changes no
service: tunplan takes over the set-up as it is. import changes nothing on the hosts.

HOST is the SSH address (IP or DNS name) of a host, or name=address to choose its name in the plan.
Without a name, a DNS name gives its first label and an IP address director-1, realserver-1… in the
order given. A destination is matched to the --realserver host that has its address; one that no
given host has becomes a host rs-A-B-C-D reached over SSH at that address. The SSH flags apply to
every host and go into the plan's ssh block.

On standard error import lists each service it left out and why (fwmark, IPv6 or SCTP services,
destinations that masquerade or route directly, ports the plan cannot express), the hosts it left
out, the VIPs a realserver lacks on tunl0 (the plan puts them there), and what applying the plan
would still change on the hosts it read (the sysctls and modules every plan sets up, for example).
A director whose net.ipv4.ip_forward is 0 gets ip_forward = false, which leaves it so. Two
directors that carry the same service differently are an error.`,
		Example: `  tunplan import --director 198.19.0.11 --realserver 198.19.0.21,198.19.0.22 -o tunplan.hcl
  tunplan import --director lvs01.example.com,lvs02.example.com --realserver web1=10.0.1.11,web2=10.0.1.12 \
      --user deploy --sudo --jump bastion.example.com > tunplan.hcl`,
		Args: cobra.NoArgs,
		PreRunE: func(*cobra.Command, []string) error {
			if len(o.directors) == 0 {
				return errors.New("--director: name at least one director (its SSH address, or name=address)")
			}
			if o.port < 1 || o.port > 65535 {
				return fmt.Errorf("--port %d: want a TCP port from 1 to 65535", o.port)
			}
			return nil
		},
		RunE: func(*cobra.Command, []string) error { return importRun(o) },
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.directors, "director", nil, "directors to read: SSH address or name=address, comma-separated (required)")
	f.StringSliceVar(&o.realservers, "realserver", nil, "realservers to read: SSH address or name=address, comma-separated")
	f.StringVarP(&o.output, "output", "o", "", "write the plan to this file (default: standard output)")
	f.StringVar(&o.user, "user", "root", "SSH user")
	f.IntVar(&o.port, "port", 22, "SSH port")
	f.StringArrayVar(&o.identity, "identity-file", nil, "SSH private key file (repeatable); the ssh-agent is used too")
	f.StringVar(&o.knownHosts, "known-hosts", defaultKnownHosts, "known_hosts file the host keys are checked against")
	f.BoolVar(&o.sudo, "sudo", false, "run the helper with sudo -n (the user is not root)")
	f.StringVar(&o.jump, "jump", "", "bastion to connect through: [user@]host[:port], as OpenSSH's ProxyJump")
	return cmd
}

// importHost is one host of the imported plan: given on the command line, or a destination that
// no given host has.
type importHost struct {
	name     string
	ssh      string // SSH address
	director bool   // given with --director
	given    bool   // given on the command line (and read); false: made for a destination
	inv      *protocol.Inventory

	roles        protocol.Roles // in the plan; none: left out
	address      netip.Addr     // the data-plane address
	ipForwardOff bool           // director: ip_forward = false (its forwarding is off; keep it so)
}

// importService is one virtual_service of the imported plan.
type importService struct {
	name      string
	svc       protocol.Service
	directors []string
	rs        []string // the host of each destination, in svc.Destinations' order
}

// importedPlan is what import makes of the hosts' inventories.
type importedPlan struct {
	hosts    []*importHost // in the plan's order: directors, realservers as given, then made ones
	services []*importService
	skipped  []string // "lvs01: fwmark 3: …", also written into the plan as a comment
}

func importRun(o *importOptions) error {
	hosts, err := o.parseHosts()
	if err != nil {
		return err
	}
	jump, err := o.jumpTarget()
	if err != nil {
		return err
	}
	if o.ready != nil {
		if err := o.ready(); err != nil {
			return err
		}
	}
	fhosts := make([]fleet.Host, 0, len(hosts))
	for _, h := range hosts {
		fhosts = append(fhosts, fleet.Host{Target: o.target(h.name, h.ssh, jump)})
	}
	r := fleet.Open(fhosts, o.connect, fleet.Options{Parallel: 5})
	all := r.Hosts
	defer func() { r.Hosts = all; r.Close() }()
	if err := o.reportFailures(r); err != nil {
		return err
	}
	r.Inspect()
	if err := o.reportFailures(r); err != nil {
		return err
	}
	byName := map[string]*fleet.HostRun{}
	for _, h := range r.Hosts {
		byName[h.Name()] = h
	}
	for _, h := range hosts {
		h.inv = byName[h.name].Inventory()
	}

	ip, notes, err := buildImport(hosts)
	for _, n := range notes {
		o.warnf("%s", n)
	}
	if err != nil {
		return err
	}
	src, desired, err := o.checked(ip)
	if err != nil {
		return err
	}
	read := o.diffPlan(r, ip, desired)
	if ip.keepIPForward(read, o.warnf) {
		if src, _, err = o.checked(ip); err != nil {
			return err
		}
	}
	if err := o.write(src); err != nil {
		return err
	}
	directors, realservers := 0, 0
	for _, h := range ip.hosts {
		if h.roles.Has(protocol.Director) {
			directors++
		}
		if h.roles.Has(protocol.Realserver) {
			realservers++
		}
	}
	where := "the plan"
	if o.output != "" {
		where = o.output
	}
	fmt.Fprintf(o.io.ErrOut, "Wrote %s: %s, %s, %s.\n", where, plural(directors, "director"), plural(realservers, "realserver"), plural(len(ip.services), "virtual service"))
	o.reportApply(read)
	return nil
}

// checked renders the plan and loads it as `tunplan validate` loads a file (plans.LoadFile, in
// memory), and makes sure it asks each director for exactly the services read there. It returns
// the plan's text and the state it asks of each host. A plan that fails is a bug of import.
func (o *importOptions) checked(ip *importedPlan) ([]byte, map[string]protocol.State, error) {
	name := o.output
	if name == "" {
		name = "<stdout>"
	}
	src := ip.render(o.sshDefaults())
	p, files, diags := plans.Load(name, src, nil)
	writeDiagnostics(o.io, o.io.ErrOut, files, diags)
	if diags.HasErrors() {
		return nil, nil, errors.New("the imported plan does not validate: this is a bug in tunplan import; please report it with the diagnostics above")
	}
	desired := p.Desired()
	if err := ip.check(desired); err != nil {
		return nil, nil, err
	}
	return src, desired, nil
}

func (o *importOptions) warnf(format string, args ...any) {
	fmt.Fprintln(o.io.ErrOut, o.io.paint(color.FgYellow)("! "+fmt.Sprintf(format, args...)))
}

// importHostName is what the plan accepts as a host name (plans/hosts.go).
var importHostName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,62}$`)

// parseHosts reads --director and --realserver: each SSH address once, each name once.
func (o *importOptions) parseHosts() ([]*importHost, error) {
	var hosts []*importHost
	byAddr, byName := map[string]*importHost{}, map[string]*importHost{}
	type spec struct {
		name, addr string
		named      bool
	}
	parse := func(flag, role string, list []string) ([]spec, error) {
		var out []spec
		n := 0
		for _, v := range list {
			v = strings.TrimSpace(v)
			if v == "" {
				continue
			}
			n++
			name, addr, named := strings.Cut(v, "=")
			if !named {
				name, addr = "", v
			}
			addr = strings.TrimSpace(addr)
			if addr == "" || strings.ContainsAny(addr, " /@") {
				return nil, fmt.Errorf("--%s %q: want an SSH address (IP or DNS name), or name=address", flag, v)
			}
			if named && !importHostName.MatchString(name) {
				return nil, fmt.Errorf("--%s %q: %q is not a valid host name: use ASCII letters, digits, underscores and dashes, starting with a letter (at most 63)", flag, v, name)
			}
			if !named {
				name = defaultName(addr, role, n)
			}
			out = append(out, spec{name, addr, named})
		}
		return out, nil
	}
	ds, err := parse("director", "director", o.directors)
	if err != nil {
		return nil, err
	}
	rs, err := parse("realserver", "realserver", o.realservers)
	if err != nil {
		return nil, err
	}
	for i, s := range append(ds, rs...) {
		director := i < len(ds)
		if h := byAddr[s.addr]; h != nil {
			if director || !h.director {
				return nil, fmt.Errorf("%s is given twice: name each host once", s.addr)
			}
			// A director also given as a realserver: one host, which is a realserver when a
			// destination is one of its addresses.
			if s.named && s.name != h.name {
				return nil, fmt.Errorf("%s is given as director %q and as realserver %q: a host has one name", s.addr, h.name, s.name)
			}
			continue
		}
		if prev := byName[s.name]; prev != nil {
			if s.named {
				return nil, fmt.Errorf("two hosts are named %q (%s and %s): host names must be unique", s.name, prev.ssh, s.addr)
			}
			s.name = uniqueName(s.name, byName)
		}
		h := &importHost{name: s.name, ssh: s.addr, director: director, given: true}
		byAddr[s.addr], byName[s.name] = h, h
		hosts = append(hosts, h)
	}
	return hosts, nil
}

// defaultName is a DNS name's first label, when it is a valid host name, else role-n.
func defaultName(addr, role string, n int) string {
	if _, err := netip.ParseAddr(addr); err != nil {
		if label, _, _ := strings.Cut(addr, "."); importHostName.MatchString(label) {
			return label
		}
	}
	return fmt.Sprintf("%s-%d", role, n)
}

func uniqueName[V any](name string, taken map[string]V) string {
	for i := 2; ; i++ {
		n := fmt.Sprintf("%s-%d", name, i)
		if _, dup := taken[n]; !dup {
			return n
		}
	}
}

// target is how to reach a host with the SSH flags (as the plan's ssh block will say).
func (o *importOptions) target(name, addr string, jump *inventory.Target) inventory.Target {
	t := inventory.Target{Name: name, Address: addr, Port: o.port, User: o.user, KnownHosts: expandHome(o.knownHosts), Sudo: o.sudo}
	for _, f := range o.identity {
		t.IdentityFile = append(t.IdentityFile, expandHome(f))
	}
	if jump != nil {
		j := *jump
		j.Name = name + " (jump " + o.jump + ")"
		if j.User == "" {
			j.User = o.user
		}
		j.IdentityFile, j.KnownHosts = t.IdentityFile, t.KnownHosts
		t.Jump = &j
	}
	return t
}

// jumpTarget parses --jump, "[user@]host[:port]", as the plan's jump attribute.
func (o *importOptions) jumpTarget() (*inventory.Target, error) {
	if o.jump == "" {
		return nil, nil
	}
	s := o.jump
	t := &inventory.Target{Port: 22}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		t.User, s = s[:i], s[i+1:]
	}
	t.Address = s
	if h, p, ok := strings.Cut(s, ":"); ok && !strings.Contains(p, ":") {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("--jump %q: invalid port %q", o.jump, p)
		}
		t.Address, t.Port = h, n
	} else if strings.HasPrefix(s, "[") {
		if i := strings.Index(s, "]:"); i > 0 {
			n, err := strconv.Atoi(s[i+2:])
			if err != nil || n < 1 || n > 65535 {
				return nil, fmt.Errorf("--jump %q: invalid port", o.jump)
			}
			t.Address, t.Port = s[1:i], n
		}
	}
	if t.Address == "" {
		return nil, fmt.Errorf("--jump %q names no host: want [user@]host[:port]", o.jump)
	}
	return t, nil
}

func expandHome(p string) string {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return p
	}
	return filepath.Join(home, strings.TrimPrefix(p, "~"))
}

// sshDefaults is the plan's top-level ssh block: the SSH flags that are not tunplan's defaults, in
// the order the README lists them. No attribute: no block.
func (o *importOptions) sshDefaults() []sshAttr {
	var out []sshAttr
	if o.user != "root" {
		out = append(out, sshAttr{"user", cty.StringVal(o.user)})
	}
	if o.port != 22 {
		out = append(out, sshAttr{"port", cty.NumberIntVal(int64(o.port))})
	}
	switch len(o.identity) {
	case 0:
	case 1:
		out = append(out, sshAttr{"identity_file", cty.StringVal(o.identity[0])})
	default:
		var vs []cty.Value
		for _, f := range o.identity {
			vs = append(vs, cty.StringVal(f))
		}
		out = append(out, sshAttr{"identity_file", cty.ListVal(vs)})
	}
	if o.knownHosts != defaultKnownHosts && expandHome(o.knownHosts) != expandHome(defaultKnownHosts) {
		out = append(out, sshAttr{"known_hosts", cty.StringVal(o.knownHosts)})
	}
	if o.sudo {
		out = append(out, sshAttr{"sudo", cty.True})
	}
	if o.jump != "" {
		out = append(out, sshAttr{"jump", cty.StringVal(o.jump)})
	}
	return out
}

type sshAttr struct {
	name  string
	value cty.Value
}

// buildImport makes the plan from the hosts' inventories. Notes are what the operator should
// know (services and hosts left out, VIPs missing on tunl0); an error is a set-up the plan cannot
// describe.
func buildImport(hosts []*importHost) (*importedPlan, []string, error) {
	im := &importer{hosts: hosts, byName: map[string]*importHost{}, made: map[netip.Addr]*importHost{}, plan: &importedPlan{}}
	for _, h := range hosts {
		im.byName[h.name] = h
	}
	err := im.build()
	return im.plan, im.notes, err
}

// importer holds what buildImport has found so far.
type importer struct {
	hosts     []*importHost // given on the command line, in that order
	byName    map[string]*importHost
	made      map[netip.Addr]*importHost // hosts made for destinations no given host has
	madeHosts []*importHost
	notes     []string
	plan      *importedPlan
}

// mergedService is one service and the directors that carry it.
type mergedService struct {
	svc       protocol.Service
	directors []string
}

func (im *importer) note(format string, args ...any) {
	im.notes = append(im.notes, fmt.Sprintf(format, args...))
}

func (im *importer) skip(host, why string) {
	im.plan.skipped = append(im.plan.skipped, host+": "+why)
	im.note("%s: skipped %s", host, why)
}

func (im *importer) build() error {
	services, order, err := im.mergeServices()
	if err != nil {
		return err
	}
	keys := im.apartFromHosts(services, order)
	if len(keys) == 0 {
		return errors.New("nothing to import: no director carries an IPv4 TCP or UDP service whose destinations all forward by tunnel (the services left out are listed above)")
	}
	slices.SortFunc(keys, func(a, b protocol.Key) int {
		return cmp.Or(a.Address.Compare(b.Address), cmp.Compare(a.Port, b.Port), cmp.Compare(a.Protocol, b.Protocol))
	})
	names := serviceNames(keys)
	vips := map[netip.Addr]bool{}
	for _, k := range keys {
		m := services[k]
		vips[k.Address] = true
		is := &importService{name: names[k], svc: m.svc, directors: m.directors}
		for _, d := range m.svc.Destinations {
			h, err := im.realserver(d.Address)
			if err != nil {
				return fmt.Errorf("service %s: %w", k, err)
			}
			is.rs = append(is.rs, h.name)
		}
		for _, d := range m.directors {
			im.byName[d].addRole(protocol.Director)
		}
		im.plan.services = append(im.plan.services, is)
	}
	if err := im.directorAddresses(vips); err != nil {
		return err
	}
	for _, h := range im.hosts {
		switch {
		case len(h.roles) == 0 && h.director:
			im.note("%s: left out of the plan: it carries no service that could be imported", h.name)
		case len(h.roles) == 0:
			im.note("%s: left out of the plan: no imported service tunnels to it (none of its addresses %v is a destination)", h.name, h.inv.Addresses)
		default:
			im.plan.hosts = append(im.plan.hosts, h)
		}
	}
	im.plan.hosts = append(im.plan.hosts, im.madeHosts...)
	im.tunnelDrift()
	return nil
}

// mergeServices collects the services of every director, each once (in the order first met): a
// service on several directors must be the same on them. Services a plan cannot express are
// skipped.
func (im *importer) mergeServices() (map[protocol.Key]*mergedService, []protocol.Key, error) {
	var order []protocol.Key
	services := map[protocol.Key]*mergedService{}
	for _, d := range im.hosts {
		if !d.director {
			continue
		}
		for _, why := range d.inv.Skipped {
			im.skip(d.name, why)
		}
		for _, s := range d.inv.Services {
			s.Destinations = slices.Clone(s.Destinations)
			slices.SortFunc(s.Destinations, func(x, y protocol.Destination) int {
				return cmp.Or(x.Address.Compare(y.Address), cmp.Compare(x.Port, y.Port)) // as a plan's Desired has them
			})
			if why := unplannable(s); why != "" {
				im.skip(d.name, s.Key().String()+": "+why)
				continue
			}
			m := services[s.Key()]
			if m == nil {
				services[s.Key()] = &mergedService{svc: s, directors: []string{d.name}}
				order = append(order, s.Key())
				continue
			}
			if diff := serviceDiff(m.svc, s); diff != "" {
				return nil, nil, fmt.Errorf("service %s differs between directors %s and %s (%s): a virtual_service is the same on all its directors; make them agree, or import them separately",
					s.Key(), m.directors[0], d.name, diff)
			}
			m.directors = append(m.directors, d.name)
		}
	}
	return services, order, nil
}

// apartFromHosts keeps the services whose VIP is no host's SSH address and no destination: a plan
// keeps VIPs and hosts' addresses apart.
func (im *importer) apartFromHosts(services map[protocol.Key]*mergedService, order []protocol.Key) []protocol.Key {
	sshIPs := map[netip.Addr]string{}
	for _, h := range im.hosts {
		if a, err := netip.ParseAddr(h.ssh); err == nil {
			sshIPs[a] = h.name
		}
	}
	rips := map[netip.Addr]bool{}
	for _, k := range order {
		for _, d := range services[k].svc.Destinations {
			rips[d.Address] = true
		}
	}
	var keys []protocol.Key
	for _, k := range order {
		switch by := services[k].directors[0]; {
		case sshIPs[k.Address] != "":
			im.skip(by, fmt.Sprintf("%s: its VIP is the SSH address of host %s; a plan keeps them apart", k, sshIPs[k.Address]))
		case rips[k.Address]:
			im.skip(by, fmt.Sprintf("%s: its VIP is also a destination (a realserver's address); a plan keeps them apart", k))
		default:
			keys = append(keys, k)
		}
	}
	return keys
}

// realserver is the host a destination tunnels to: the host read that has its address (a host is
// found by one address only), else a host made for it, named after it and reached over SSH there.
func (im *importer) realserver(rip netip.Addr) (*importHost, error) {
	var found []*importHost
	for _, h := range im.hosts {
		if slices.Contains(h.inv.Addresses, rip) {
			found = append(found, h)
		}
	}
	switch {
	case len(found) > 1:
		return nil, fmt.Errorf("destination %s is an address of both %s and %s: give each realserver its own address", rip, found[0].name, found[1].name)
	case len(found) == 1:
		h := found[0]
		if h.address.IsValid() && h.address != rip {
			return nil, fmt.Errorf("host %s is the destination of both %s and %s: a plan gives a realserver one address; make the services tunnel to one of them", h.name, h.address, rip)
		}
		h.address = rip
		h.addRole(protocol.Realserver)
		return h, nil
	}
	if h := im.made[rip]; h != nil {
		return h, nil
	}
	b := rip.As4()
	name := fmt.Sprintf("rs-%d-%d-%d-%d", b[0], b[1], b[2], b[3])
	if im.byName[name] != nil {
		name = uniqueName(name, im.byName)
	}
	h := &importHost{name: name, ssh: rip.String(), address: rip, roles: protocol.Roles{protocol.Realserver}}
	im.byName[name], im.made[rip] = h, h
	im.madeHosts = append(im.madeHosts, h)
	im.note("%s: destination %s is no address of the hosts read: the plan reaches it over SSH at that address; its tunl0 was not read (give it with --realserver to read it, or to name it)", name, rip)
	return h, nil
}

// directorAddresses gives each director without one (as a realserver) its address: its SSH
// address when the host has it, else its first other address that is no VIP and no other host's.
func (im *importer) directorAddresses(vips map[netip.Addr]bool) error {
	taken := map[netip.Addr]bool{}
	for _, h := range append(slices.Clone(im.hosts), im.madeHosts...) {
		if h.address.IsValid() {
			taken[h.address] = true
		}
	}
	for _, h := range im.hosts {
		if !h.roles.Has(protocol.Director) || h.address.IsValid() {
			continue
		}
		usable := func(a netip.Addr) bool {
			return a.Is4() && a.IsGlobalUnicast() && !vips[a] && !taken[a] && slices.Contains(h.inv.Addresses, a)
		}
		if a, err := netip.ParseAddr(h.ssh); err == nil && usable(a) {
			h.address = a
		} else if i := slices.IndexFunc(h.inv.Addresses, usable); i >= 0 {
			h.address = h.inv.Addresses[i]
		} else {
			return fmt.Errorf("director %s has no IPv4 address of its own to put in the plan (its addresses: %v; VIPs and other hosts' addresses excluded)", h.name, h.inv.Addresses)
		}
		taken[h.address] = true
	}
	return nil
}

// tunnelDrift notes the VIPs the hosts read lack on tunl0: drift that applying the plan fixes.
func (im *importer) tunnelDrift() {
	for _, s := range im.plan.services {
		vip := netip.PrefixFrom(s.svc.Address, 32)
		need := slices.Clone(s.directors)
		for _, r := range s.rs {
			if !slices.Contains(need, r) {
				need = append(need, r)
			}
		}
		for _, n := range need {
			if h := im.byName[n]; h.given && !slices.Contains(h.inv.TunnelAddresses, vip) {
				im.note("%s: has no %s on %s, which virtual_service %q needs there: applying the plan adds it", n, vip, protocol.TunnelDevice, s.name)
			}
		}
	}
}

// addRole gives h role r (roles stay sorted: director before realserver).
func (h *importHost) addRole(r protocol.Role) {
	if !h.roles.Has(r) {
		h.roles = append(h.roles, r)
		slices.Sort(h.roles)
	}
}

// unplannable says why a plan cannot express s, or "".
func unplannable(s protocol.Service) string {
	switch {
	case s.Port == 0:
		return "a port-0 (every port) service; a virtual_service needs a port from 1 to 65535"
	case !s.Address.IsGlobalUnicast():
		return "its VIP is not a unicast address"
	case !slices.Contains(plans.Schedulers, s.Scheduler):
		return fmt.Sprintf("scheduler %q is not one a plan may name (%s)", s.Scheduler, strings.Join(plans.Schedulers, " "))
	case len(s.Destinations) == 0:
		return "no destinations; a virtual_service needs at least one realserver"
	}
	for _, d := range s.Destinations {
		at := netip.AddrPortFrom(d.Address, d.Port)
		switch {
		case d.Port != s.Port:
			return fmt.Sprintf("destination %s has port %d; in tunnel mode the realserver receives the service port %d, so a plan cannot map ports", at, d.Port, s.Port)
		case d.Weight > 65535:
			return fmt.Sprintf("destination %s has weight %d; a plan's weights go from 0 to 65535", at, d.Weight)
		}
	}
	return ""
}

// serviceDiff says how two directors' copies of a service differ, or "".
func serviceDiff(a, b protocol.Service) string {
	var out []string
	if a.Scheduler != b.Scheduler {
		out = append(out, fmt.Sprintf("scheduler %s vs %s", a.Scheduler, b.Scheduler))
	}
	if a.Persistence != b.Persistence {
		out = append(out, fmt.Sprintf("persistence %d vs %d", a.Persistence, b.Persistence))
	}
	if !reflect.DeepEqual(a.Destinations, b.Destinations) {
		out = append(out, fmt.Sprintf("destinations %s vs %s", dests(a.Destinations), dests(b.Destinations)))
	}
	return strings.Join(out, "; ")
}

func dests(ds []protocol.Destination) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, fmt.Sprintf("%s weight %d", netip.AddrPortFrom(d.Address, d.Port), d.Weight))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// serviceNames names each service "tcp-80" when it is the only one with its protocol and port,
// else "svc-VIP-PORT" (with "-udp"/"-tcp" when a VIP and port have both protocols).
func serviceNames(keys []protocol.Key) map[protocol.Key]string {
	type pp struct {
		proto string
		port  uint16
	}
	type vp struct {
		vip  netip.Addr
		port uint16
	}
	byPP, byVP := map[pp]int{}, map[vp]int{}
	for _, k := range keys {
		byPP[pp{k.Protocol, k.Port}]++
		byVP[vp{k.Address, k.Port}]++
	}
	out := map[protocol.Key]string{}
	for _, k := range keys {
		switch {
		case byPP[pp{k.Protocol, k.Port}] == 1:
			out[k] = fmt.Sprintf("%s-%d", k.Protocol, k.Port)
		case byVP[vp{k.Address, k.Port}] == 1:
			out[k] = fmt.Sprintf("svc-%s-%d", k.Address, k.Port)
		default:
			out[k] = fmt.Sprintf("svc-%s-%d-%s", k.Address, k.Port, k.Protocol)
		}
	}
	return out
}

// render writes the plan, formatted: a comment, the ssh defaults, hosts, virtual services.
func (ip *importedPlan) render(ssh []sshAttr) []byte {
	f := hclwrite.NewEmptyFile()
	body := f.Body()
	var from []string
	for _, h := range ip.hosts {
		if h.director {
			from = append(from, h.name)
		}
	}
	comment := "# Written by tunplan import from the live IPVS table of " + strings.Join(from, ", ") + ".\n"
	if len(ip.skipped) > 0 {
		comment += "# Left out (tunplan does not manage them and leaves them alone):\n"
		for _, s := range ip.skipped {
			comment += "#   " + s + "\n"
		}
	}
	body.AppendUnstructuredTokens(hclwrite.Tokens{{Type: hclsyntax.TokenComment, Bytes: []byte(comment)}})
	if len(ssh) > 0 {
		body.AppendNewline()
		b := body.AppendNewBlock("ssh", nil).Body()
		for _, a := range ssh {
			b.SetAttributeValue(a.name, a.value)
		}
	}
	for _, h := range ip.hosts {
		body.AppendNewline()
		b := body.AppendNewBlock("host", []string{h.name}).Body()
		if len(h.roles) == 1 {
			b.SetAttributeValue("role", cty.StringVal(string(h.roles[0])))
		} else {
			var vs []cty.Value
			for _, r := range h.roles {
				vs = append(vs, cty.StringVal(string(r)))
			}
			b.SetAttributeValue("role", cty.ListVal(vs))
		}
		b.SetAttributeValue("address", cty.StringVal(h.address.String()))
		if h.ipForwardOff {
			b.SetAttributeValue("ip_forward", cty.False)
		}
		if h.ssh != h.address.String() {
			b.AppendNewBlock("ssh", nil).Body().SetAttributeValue("host", cty.StringVal(h.ssh))
		}
	}
	for _, s := range ip.services {
		body.AppendNewline()
		b := body.AppendNewBlock("virtual_service", []string{s.name}).Body()
		b.SetAttributeValue("vip", cty.StringVal(s.svc.Address.String()))
		if s.svc.Protocol != "tcp" {
			b.SetAttributeValue("protocol", cty.StringVal(s.svc.Protocol))
		}
		b.SetAttributeValue("port", cty.NumberIntVal(int64(s.svc.Port)))
		b.SetAttributeValue("scheduler", cty.StringVal(s.svc.Scheduler))
		if s.svc.Persistence != 0 {
			b.SetAttributeValue("persistence", cty.NumberUIntVal(uint64(s.svc.Persistence)))
		}
		var ds []cty.Value
		for _, d := range s.directors {
			ds = append(ds, cty.StringVal(d))
		}
		b.SetAttributeValue("directors", cty.ListVal(ds))
		b.AppendNewline()
		for i, d := range s.svc.Destinations {
			if d.Weight == 1 {
				// `realserver "rs1" {}`: an empty block on one line, which hclwrite does not make.
				b.AppendUnstructuredTokens(hclwrite.Tokens{
					{Type: hclsyntax.TokenIdent, Bytes: []byte("realserver")},
					{Type: hclsyntax.TokenOQuote, Bytes: []byte(`"`)},
					{Type: hclsyntax.TokenQuotedLit, Bytes: []byte(s.rs[i])},
					{Type: hclsyntax.TokenCQuote, Bytes: []byte(`"`)},
					{Type: hclsyntax.TokenOBrace, Bytes: []byte("{")},
					{Type: hclsyntax.TokenCBrace, Bytes: []byte("}")},
					{Type: hclsyntax.TokenNewline, Bytes: []byte("\n")},
				})
				continue
			}
			b.AppendNewBlock("realserver", []string{s.rs[i]}).Body().SetAttributeValue("weight", cty.NumberUIntVal(uint64(d.Weight)))
		}
	}
	return hclwrite.Format(f.Bytes())
}

// check makes sure the plan, as loaded, asks each director for exactly the services read there.
func (ip *importedPlan) check(desired map[string]protocol.State) error {
	want := map[string][]protocol.Service{}
	for _, s := range ip.services {
		for _, d := range s.directors {
			want[d] = append(want[d], s.svc)
		}
	}
	for _, h := range ip.hosts {
		w := want[h.name]
		slices.SortFunc(w, func(x, y protocol.Service) int {
			return cmp.Or(cmp.Compare(x.Protocol, y.Protocol), x.Address.Compare(y.Address), cmp.Compare(x.Port, y.Port))
		})
		if got := desired[h.name].Services; !reflect.DeepEqual(got, w) && len(got)+len(w) > 0 {
			return fmt.Errorf("the imported plan asks %s for other services than it has (a bug in tunplan import, please report it):\nplan: %+v\nhost: %+v", h.name, got, w)
		}
	}
	return nil
}

// write writes the plan to -o (through a temporary file, so a failure leaves no half plan) or to
// standard output.
func (o *importOptions) write(src []byte) error {
	if o.output == "" {
		_, err := o.io.Out.Write(src)
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(o.output), ".tunplan-import-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(src); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), o.output)
}

// diffPlan diffs the plan against the hosts read, as `tunplan diff` would: what applying it would
// change there. It changes nothing. Hosts left out of the plan are not asked (the caller puts them
// back into the run before closing it).
func (o *importOptions) diffPlan(r *fleet.Run, ip *importedPlan, desired map[string]protocol.State) []hostChanges {
	in := map[string]*importHost{}
	for _, h := range ip.hosts {
		in[h.name] = h
	}
	var hosts []*fleet.HostRun
	for _, h := range r.Hosts {
		if ih := in[h.Name()]; ih != nil {
			h.Roles, h.Desired = ih.roles, desired[h.Name()]
			hosts = append(hosts, h)
		}
	}
	r.Hosts = hosts
	r.Diff(false)
	read, _ := collect(hosts, fleet.Diff)
	return read
}

// ipForwardChange is the change a plan makes on a director whose forwarding is off.
const ipForwardChange = "sysctl net.ipv4.ip_forward"

// keepIPForward sets ip_forward = false on the directors whose net.ipv4.ip_forward the plan would
// turn on (a TUN director does not need it; the plan then leaves it alone), drops that change from
// read, and reports whether it set any.
func (ip *importedPlan) keepIPForward(read []hostChanges, warnf func(string, ...any)) bool {
	hosts := map[string]*importHost{}
	for _, h := range ip.hosts {
		hosts[h.name] = h
	}
	set := false
	for i, hc := range read {
		h := hosts[hc.Host]
		if h == nil || !h.roles.Has(protocol.Director) {
			continue
		}
		for j, c := range hc.Changes {
			if c.Address == ipForwardChange && c.After == "1" {
				h.ipForwardOff, set = true, true
				read[i].Changes = slices.Delete(slices.Clone(hc.Changes), j, j+1)
				warnf("%s: net.ipv4.ip_forward is %s there: the plan says ip_forward = false, so tunplan leaves it alone (a TUN director does not need it)", h.name, c.Before)
				break
			}
		}
	}
	return set
}

// reportApply says what applying the plan would still change on the hosts read: what every plan
// sets up that they lack (sysctls, modules, VIPs on tunl0). A host that could not be checked is a
// warning.
func (o *importOptions) reportApply(read []hostChanges) {
	var show []hostChanges
	var t tally
	failed := 0
	for _, h := range read {
		switch {
		case h.Error != "":
			failed++
			o.warnf("%s: could not check the plan against the host: %s", h.Host, h.Error)
		case len(h.Changes) > 0:
			h.Uploaded = 0 // import is not about the helper
			t.count(h.Changes)
			show = append(show, h)
		}
	}
	switch {
	case len(show) > 0:
		fmt.Fprintf(o.io.ErrOut, "Applying it would still make %s (what every plan sets up there; tunplan diff shows the same):\n", t)
		renderHuman(o.io, o.io.ErrOut, show)
	case failed == 0:
		fmt.Fprintf(o.io.ErrOut, "Applying it changes nothing on the %s read.\n", plural(len(read), "host"))
	}
}
