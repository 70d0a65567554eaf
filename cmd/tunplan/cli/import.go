package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fatih/color"
	"github.com/spf13/cobra"

	"github.com/tunplan/tunplan/internal/remotetext"
	"github.com/tunplan/tunplan/inventory/fleet"
	"github.com/tunplan/tunplan/inventory/target"
	"github.com/tunplan/tunplan/modules/protocol"
	"github.com/tunplan/tunplan/plans"
	"github.com/tunplan/tunplan/plans/imports"
)

// importOptions are import's flags. The plan is made in plans/imports; the command reads the hosts,
// writes the plan and reports.
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
	f.StringVar(&o.user, "user", imports.DefaultUser, "SSH user")
	f.IntVar(&o.port, "port", imports.DefaultPort, "SSH port")
	f.StringArrayVar(&o.identity, "identity-file", nil, "SSH private key file (repeatable); the ssh-agent is used too")
	f.StringVar(&o.knownHosts, "known-hosts", imports.DefaultKnownHosts, "known_hosts file the host keys are checked against")
	f.BoolVar(&o.sudo, "sudo", false, "run the helper with sudo -n (the user is not root)")
	f.StringVar(&o.jump, "jump", "", "bastion to connect through: [user@]host[:port], as OpenSSH's ProxyJump")
	return cmd
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
	ssh := o.ssh()
	fhosts := make([]fleet.Host, 0, len(hosts))
	for _, h := range hosts {
		fhosts = append(fhosts, fleet.Host{Target: ssh.Target(h.Name, h.SSHAddress, jump)})
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
	for i, h := range hosts {
		hosts[i].Inventory = byName[h.Name].Inventory()
	}

	ip, notes, err := imports.Build(hosts, ssh)
	for _, n := range notes {
		o.warnf("%s", n)
	}
	if err != nil {
		return err
	}
	p, err := o.checked(ip)
	if err != nil {
		return err
	}
	read := o.diffPlan(r, p)
	if o.leaveAlone(ip, read) {
		if p, err = o.checked(ip); err != nil {
			return err
		}
	}
	if err := o.write(ip.HCL()); err != nil {
		return err
	}
	directors, realservers := 0, 0
	for _, h := range p.Hosts {
		if h.Has(protocol.Director) {
			directors++
		}
		if h.Has(protocol.Realserver) {
			realservers++
		}
	}
	where := "the plan"
	if o.output != "" {
		where = o.output
	}
	fmt.Fprintf(o.io.ErrOut, "Wrote %s: %s, %s, %s.\n", where, plural(directors, "director"), plural(realservers, "realserver"), plural(len(p.Services), "virtual service"))
	o.reportApply(read)
	return nil
}

// checked loads the plan as `tunplan validate` loads a file, in memory, and shows its diagnostics.
func (o *importOptions) checked(ip *imports.Plan) (*plans.Plan, error) {
	name := o.output
	if name == "" {
		name = "<stdout>"
	}
	p, files, diags, err := ip.Check(name)
	writeDiagnostics(o.io, o.io.ErrOut, files, diags)
	return p, err
}

// warnf writes one warning line to standard error. Warnings carry the hosts' text (why a service
// was left out, a host's error): escaped, it stays one line and cannot drive the terminal.
func (o *importOptions) warnf(format string, args ...any) {
	fmt.Fprintln(o.io.ErrOut, o.io.paint(color.FgYellow)("! "+remotetext.Escape(fmt.Sprintf(format, args...))))
}

// parseHosts reads --director and --realserver, and names the hosts (imports.Hosts).
func (o *importOptions) parseHosts() ([]imports.Host, error) {
	parse := func(flag string, list []string) ([]imports.Given, error) {
		var out []imports.Given
		for _, v := range list {
			if v = strings.TrimSpace(v); v == "" {
				continue
			}
			name, addr, named := strings.Cut(v, "=")
			if !named {
				name, addr = "", v
			}
			addr = strings.TrimSpace(addr)
			if addr == "" || strings.ContainsAny(addr, " /@") {
				return nil, fmt.Errorf("--%s %q: want an SSH address (IP or DNS name), or name=address", flag, v)
			}
			if named && !plans.ValidHostName(name) {
				return nil, fmt.Errorf("--%s %q: %q is not a valid host name: use ASCII letters, digits, underscores and dashes, starting with a letter (at most 63)", flag, v, name)
			}
			out = append(out, imports.Given{Name: name, SSHAddress: addr})
		}
		return out, nil
	}
	ds, err := parse("director", o.directors)
	if err != nil {
		return nil, err
	}
	rs, err := parse("realserver", o.realservers)
	if err != nil {
		return nil, err
	}
	return imports.Hosts(ds, rs)
}

// ssh is the SSH flags, as the plan's ssh block will say them.
func (o *importOptions) ssh() imports.SSH {
	return imports.SSH{User: o.user, Port: o.port, IdentityFiles: o.identity, KnownHosts: o.knownHosts, Sudo: o.sudo, Jump: o.jump}
}

// jumpTarget parses --jump, "[user@]host[:port]", as the plan's jump attribute.
func (o *importOptions) jumpTarget() (*target.Target, error) {
	if o.jump == "" {
		return nil, nil
	}
	user, host, port, err := plans.ParseJump(o.jump)
	if err != nil {
		return nil, fmt.Errorf("--jump %q: %v: want [user@]host[:port]", o.jump, err)
	}
	return &target.Target{User: user, Address: host, Port: port}, nil
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
func (o *importOptions) diffPlan(r *fleet.Run, p *plans.Plan) []hostChanges {
	desired := p.Desired()
	roles := map[string]protocol.Roles{}
	for _, h := range p.Hosts {
		roles[h.Name] = h.Roles
	}
	var hosts []*fleet.HostRun
	for _, h := range r.Hosts {
		if rs, ok := roles[h.Name()]; ok {
			h.Roles, h.Desired = rs, desired[h.Name()]
			hosts = append(hosts, h)
		}
	}
	r.Hosts = hosts
	r.Diff(false)
	read, _ := collect(hosts, fleet.Diff)
	return read
}

// leaveAlone makes the plan leave alone what the hosts have where the plan language allows it
// (imports.Plan.LeaveAlone: ip_forward = false, hide_vip = false), drops those changes from read,
// and reports whether it changed the plan.
func (o *importOptions) leaveAlone(ip *imports.Plan, read []hostChanges) bool {
	set := false
	for i, hc := range read {
		changes, notes := ip.LeaveAlone(hc.Host, hc.Changes)
		for _, n := range notes {
			o.warnf("%s", n)
		}
		if notes != nil {
			read[i].Changes, set = changes, true
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
