package plans

import (
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/dynblock"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/tunplan/tunplan/inventory"
	"github.com/tunplan/tunplan/modules/protocol"
)

// LoadFile reads, parses and validates the plan at path. vars are the --var values (name → text).
// The files map is what hcl.NewDiagnosticTextWriter needs to print diagnostics with source snippets.
// The plan is nil when the diagnostics have errors.
func LoadFile(path string, vars map[string]string) (*Plan, map[string]*hcl.File, hcl.Diagnostics) {
	if st, err := os.Stat(path); err == nil && st.Size() > MaxPlanBytes {
		return nil, map[string]*hcl.File{}, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "The plan is too large",
			Detail:   fmt.Sprintf("%s is %d bytes; tunplan reads plans of at most %d bytes. Is -f pointing at the right file?", path, st.Size(), MaxPlanBytes),
			Subject:  &hcl.Range{Filename: path, Start: hcl.InitialPos, End: hcl.InitialPos},
		}}
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, map[string]*hcl.File{}, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read the plan",
			Detail:   fmt.Sprintf("%v. Give the plan file with -f (default tunplan.hcl in the current directory).", err),
		}}
	}
	return Load(path, src, vars)
}

// Load parses and validates the plan src, named filename in diagnostics. See LoadFile.
func Load(filename string, src []byte, vars map[string]string) (*Plan, map[string]*hcl.File, hcl.Diagnostics) {
	if diags := append(checkText(filename, src), checkNesting(filename, src)...); diags.HasErrors() {
		return nil, map[string]*hcl.File{}, diags
	}
	parser := hclparse.NewParser()
	file, diags := parser.ParseHCL(src, filename)
	if diags.HasErrors() {
		return nil, parser.Files(), diags
	}
	l := &loader{diags: diags}
	p := l.load(file.Body, vars)
	if l.diags.HasErrors() {
		return nil, parser.Files(), l.diags
	}
	return p, parser.Files(), l.diags
}

var (
	preludeSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "locals"},
	}}
	mainSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
		{Type: "ssh"},
		{Type: "host", LabelNames: []string{"name"}},
		{Type: "virtual_service", LabelNames: []string{"name"}},
	}}
	variableSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "default"}, {Name: "description"},
	}}
	sshAttrs = []hcl.AttributeSchema{
		{Name: "user"}, {Name: "port"}, {Name: "identity_file"}, {Name: "known_hosts"}, {Name: "sudo"}, {Name: "jump"},
	}
	defaultSSHSchema = &hcl.BodySchema{Attributes: sshAttrs}
	hostSSHSchema    = &hcl.BodySchema{Attributes: append([]hcl.AttributeSchema{{Name: "host"}}, sshAttrs...)}
	hostSchema       = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "role"}, {Name: "address"}, {Name: "vip_device"}, {Name: "ip_forward"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "ssh"}},
	}
	serviceSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "vip"}, {Name: "protocol"}, {Name: "port"}, {Name: "scheduler"}, {Name: "persistence"}, {Name: "directors"},
		},
		Blocks: []hcl.BlockHeaderSchema{{Type: "realserver", LabelNames: []string{"host"}}},
	}
	realserverSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "weight"}, {Name: "port"}}}
)

type loader struct {
	diags hcl.Diagnostics
	ctx   *hcl.EvalContext
}

func (l *loader) errorf(subject hcl.Range, summary, detail string, args ...any) {
	l.diags = append(l.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(detail, args...),
		Subject:  subject.Ptr(),
	})
}

func (l *loader) warnf(subject hcl.Range, summary, detail string, args ...any) {
	l.diags = append(l.diags, &hcl.Diagnostic{
		Severity: hcl.DiagWarning,
		Summary:  summary,
		Detail:   fmt.Sprintf(detail, args...),
		Subject:  subject.Ptr(),
	})
}

func (l *loader) load(body hcl.Body, cliVars map[string]string) *Plan {
	prelude, rest, d := body.PartialContent(preludeSchema)
	l.diags = append(l.diags, d...)
	l.ctx = &hcl.EvalContext{Functions: functions(), Variables: map[string]cty.Value{}}
	l.ctx.Variables["var"] = l.variables(prelude.Blocks.OfType("variable"), cliVars)
	l.ctx.Variables["local"] = l.locals(prelude.Blocks.OfType("locals"))

	content, d := dynblock.Expand(rest, l.ctx).Content(mainSchema)
	l.diags = append(l.diags, d...)

	defaults := sshSpec{}
	var sshBlock *hcl.Block
	for _, b := range content.Blocks.OfType("ssh") {
		if sshBlock != nil {
			l.errorf(b.DefRange, "Duplicate ssh block", "The SSH defaults were already given at %s. Merge the two ssh blocks into one.", sshBlock.DefRange)
			continue
		}
		sshBlock = b
		defaults = l.sshSpec(b, defaultSSHSchema)
	}

	p := &Plan{all: map[string]Host{}}
	for _, b := range content.Blocks.OfType("host") {
		h := l.host(b, defaults)
		if prev, dup := p.all[h.Name]; dup {
			l.errorf(b.LabelRanges[0], "Duplicate host", "A host named %q was previously declared at %s. Host names must be unique: rename or remove one of them.", h.Name, prev.DeclRange)
			continue
		}
		p.all[h.Name] = h
		p.Hosts = append(p.Hosts, h)
	}
	sort.Slice(p.Hosts, func(i, j int) bool { return p.Hosts[i].Name < p.Hosts[j].Name })

	for _, b := range content.Blocks.OfType("virtual_service") {
		p.Services = append(p.Services, l.service(b))
	}
	l.validate(p)
	return p
}

// variables evaluates the variable blocks, with the command-line values converted to the type of
// each default.
func (l *loader) variables(blocks hcl.Blocks, cliVars map[string]string) cty.Value {
	vals := map[string]cty.Value{}
	seen := map[string]hcl.Range{}
	for _, b := range blocks {
		name := b.Labels[0]
		if prev, dup := seen[name]; dup {
			l.errorf(b.LabelRanges[0], "Duplicate variable", "A variable named %q was previously declared at %s. Remove one of them.", name, prev)
			continue
		}
		seen[name] = b.DefRange
		if !hclsyntax.ValidIdentifier(name) {
			l.errorf(b.LabelRanges[0], "Invalid variable name", "%q is not a valid name: use letters, digits, underscores and dashes, starting with a letter.", name)
		}
		c, d := b.Body.Content(variableSchema)
		l.diags = append(l.diags, d...)
		def := cty.NilVal
		if a := c.Attributes["default"]; a != nil {
			v, d := a.Expr.Value(&hcl.EvalContext{Functions: functions()})
			l.diags = append(l.diags, d...)
			def = v
		}
		if a := c.Attributes["description"]; a != nil {
			l.str(a)
		}
		text, given := cliVars[name]
		switch {
		case given:
			vals[name] = l.cliValue(name, text, def, b.DefRange)
		case def == cty.NilVal:
			l.errorf(b.DefRange, "No value for required variable", "Variable %q has no default: give it on the command line with --var %s=VALUE, or add default = … to the block.", name, name)
			vals[name] = cty.DynamicVal
		default:
			vals[name] = def
		}
	}
	var extra []string
	for name := range cliVars {
		if _, ok := seen[name]; !ok {
			extra = append(extra, name)
		}
	}
	slices.Sort(extra)
	known := slices.Sorted(func(yield func(string) bool) {
		for n := range seen {
			if !yield(n) {
				return
			}
		}
	})
	for _, name := range extra {
		list := "The plan declares no variables"
		if len(known) > 0 {
			list = "The plan declares: " + strings.Join(known, ", ")
		}
		l.diags = append(l.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Undeclared variable",
			Detail:   fmt.Sprintf("--var %s was given, but the plan has no variable %q%s. %s; declare it with variable %q { default = … } or fix the name.", name, name, suggest(name, known), list, name),
		})
	}
	return cty.ObjectVal(vals)
}

// cliValue converts a --var value to the type of the variable's default: strings stay as given,
// numbers and booleans are converted, lists and maps are parsed as HCL expressions.
func (l *loader) cliValue(name, text string, def cty.Value, rng hcl.Range) cty.Value {
	if def == cty.NilVal || def.IsNull() || def.Type() == cty.String || def.Type() == cty.DynamicPseudoType {
		return cty.StringVal(text)
	}
	if def.Type().IsPrimitiveType() {
		v, err := convert.Convert(cty.StringVal(text), def.Type())
		if err != nil {
			l.errorf(rng, "Invalid value for variable", "--var %s=%s: %v (the default of %q is a %s).", name, text, err, name, def.Type().FriendlyName())
			return cty.DynamicVal
		}
		return v
	}
	expr, d := hclsyntax.ParseExpression([]byte(text), "--var "+name, hcl.Pos{Line: 1, Column: 1})
	if d.HasErrors() {
		l.errorf(rng, "Invalid value for variable", "--var %s=%s is not an HCL expression; the default of %q is a %s, so give e.g. [\"a\", \"b\"] or {k = \"v\"}.", name, text, name, def.Type().FriendlyName())
		return cty.DynamicVal
	}
	v, d := expr.Value(&hcl.EvalContext{Functions: functions()})
	if d.HasErrors() {
		l.errorf(rng, "Invalid value for variable", "--var %s=%s: %s", name, text, d.Error())
		return cty.DynamicVal
	}
	return v
}

// locals evaluates every locals block in dependency order (a local may use var.*, functions and
// other locals).
func (l *loader) locals(blocks hcl.Blocks) cty.Value {
	pending := map[string]*hcl.Attribute{}
	for _, b := range blocks {
		attrs, d := b.Body.JustAttributes()
		l.diags = append(l.diags, d...)
		for name, a := range attrs {
			if prev, dup := pending[name]; dup {
				l.errorf(a.NameRange, "Duplicate local value", "local.%s was previously defined at %s. Rename or remove one of them.", name, prev.NameRange)
				continue
			}
			pending[name] = a
		}
	}
	vals := map[string]cty.Value{}
	for len(pending) > 0 {
		progress := false
		for _, name := range slices.Sorted(mapKeys(pending)) {
			a := pending[name]
			ready := true
			for _, tr := range a.Expr.Variables() {
				if tr.RootName() != "local" || len(tr) < 2 {
					continue
				}
				if at, ok := tr[1].(hcl.TraverseAttr); ok {
					if _, waiting := pending[at.Name]; waiting && at.Name != name {
						ready = false
					}
					if at.Name == name {
						l.errorf(a.Expr.Range(), "Self-referencing local value", "local.%s refers to itself.", name)
						vals[name] = cty.DynamicVal
						delete(pending, name)
						ready = false
						progress = true
						break
					}
				}
			}
			if !ready {
				continue
			}
			ctx := l.ctx.NewChild()
			ctx.Variables = map[string]cty.Value{"local": cty.ObjectVal(vals)}
			v, d := a.Expr.Value(ctx)
			l.diags = append(l.diags, d...)
			if d.HasErrors() {
				v = cty.DynamicVal
			}
			vals[name] = v
			delete(pending, name)
			progress = true
		}
		if !progress {
			for _, name := range slices.Sorted(mapKeys(pending)) {
				l.errorf(pending[name].Expr.Range(), "Cycle in local values", "local.%s depends on itself through other locals (%s). Break the cycle.", name, strings.Join(slices.Sorted(mapKeys(pending)), ", "))
				vals[name] = cty.DynamicVal
			}
			break
		}
	}
	return cty.ObjectVal(vals)
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// sshSpec is one ssh block; nil fields were not given.
type sshSpec struct {
	host, user, knownHosts, jump *string
	port                         *int
	identity                     []string
	identitySet                  bool
	sudo                         *bool
}

func (l *loader) sshSpec(b *hcl.Block, schema *hcl.BodySchema) sshSpec {
	var s sshSpec
	c, d := b.Body.Content(schema)
	l.diags = append(l.diags, d...)
	if a := c.Attributes["host"]; a != nil {
		if v, ok := l.str(a); ok {
			if v == "" {
				l.errorf(a.Expr.Range(), "Invalid SSH host", "ssh host must be an IP address or a DNS name; remove it to use the host's address.")
			}
			s.host = &v
		}
	}
	if a := c.Attributes["user"]; a != nil {
		if v, ok := l.str(a); ok {
			if v == "" {
				l.errorf(a.Expr.Range(), "Invalid SSH user", "user must not be empty; remove it to log in as root.")
			}
			s.user = &v
		}
	}
	if a := c.Attributes["port"]; a != nil {
		if v, ok := l.intIn(a, 1, 65535, "SSH port", "a TCP port from 1 to 65535 (default 22)"); ok {
			n := int(v)
			s.port = &n
		}
	}
	if a := c.Attributes["identity_file"]; a != nil {
		if v, _, ok := l.strList(a); ok {
			s.identitySet = true
			for _, f := range v {
				s.identity = append(s.identity, expandHome(f))
			}
		}
	}
	if a := c.Attributes["known_hosts"]; a != nil {
		if v, ok := l.str(a); ok {
			v = expandHome(v)
			s.knownHosts = &v
		}
	}
	if a := c.Attributes["sudo"]; a != nil {
		if v, ok := l.boolean(a); ok {
			s.sudo = &v
		}
	}
	if a := c.Attributes["jump"]; a != nil {
		if v, ok := l.str(a); ok {
			if _, _, _, err := parseJump(v); err != nil {
				l.errorf(a.Expr.Range(), "Invalid jump host", "%v. Write jump = \"[user@]host[:port]\", as OpenSSH's ProxyJump.", err)
			} else {
				s.jump = &v
			}
		}
	}
	return s
}

func parseJump(s string) (user, host string, port int, err error) {
	if i := strings.LastIndex(s, "@"); i >= 0 {
		user, s = s[:i], s[i+1:]
	}
	host, port = s, 22
	if h, p, e := splitHostPort(s); e == nil {
		host = h
		if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
			return "", "", 0, fmt.Errorf("%q has an invalid port", s)
		}
	}
	if host == "" {
		return "", "", 0, fmt.Errorf("%q names no host", s)
	}
	return user, host, port, nil
}

func splitHostPort(s string) (string, string, error) {
	if strings.HasPrefix(s, "[") {
		if i := strings.Index(s, "]:"); i > 0 {
			return s[1:i], s[i+2:], nil
		}
		return "", "", fmt.Errorf("no port")
	}
	if strings.Count(s, ":") == 1 {
		i := strings.Index(s, ":")
		return s[:i], s[i+1:], nil
	}
	return "", "", fmt.Errorf("no port")
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

// hostName is what a host may be called: it appears in messages, logs and generations on hosts.
var hostName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,62}$`)

// host decodes one host block. Attributes in error keep their zero value.
func (l *loader) host(b *hcl.Block, defaults sshSpec) Host {
	h := Host{Name: b.Labels[0], DeclRange: b.DefRange, VIPDevice: protocol.TunnelDevice, IPForward: true}
	if !hostName.MatchString(h.Name) {
		l.errorf(b.LabelRanges[0], "Invalid host name", "%q is not a valid host name: use ASCII letters, digits, underscores and dashes, starting with a letter (at most 63).", h.Name)
	}
	c, d := b.Body.Content(hostSchema)
	l.diags = append(l.diags, d...)

	if a := c.Attributes["role"]; a == nil {
		l.errorf(b.DefRange, "Missing required attribute \"role\"", "Host %q needs role = \"director\", \"realserver\" or [\"director\", \"realserver\"].", h.Name)
	} else if roles, ranges, ok := l.strList(a); ok {
		if len(roles) == 0 {
			l.errorf(a.Expr.Range(), "Host has no role", "Host %q is neither a director nor a realserver: set role = \"director\" or \"realserver\", or remove the host.", h.Name)
		}
		for i, r := range roles {
			switch protocol.Role(r) {
			case protocol.Director, protocol.Realserver:
				if !h.Has(protocol.Role(r)) {
					h.Roles = append(h.Roles, protocol.Role(r))
				}
			default:
				l.errorf(ranges[i], "Unknown role", "Role %q is not known: a host is a \"director\" or a \"realserver\"%s.", r, suggest(r, []string{"director", "realserver"}))
			}
		}
		slices.Sort(h.Roles) // "director" < "realserver"
	}

	if a := c.Attributes["address"]; a == nil {
		l.errorf(b.DefRange, "Missing required attribute \"address\"", "Host %q needs address = \"<IPv4>\": its data-plane address (for a realserver, the RIP the directors tunnel to).", h.Name)
	} else if addr, ok := l.ipv4(a, "address"); ok {
		h.Address = addr
	}

	if a := c.Attributes["vip_device"]; a != nil {
		if v, ok := l.str(a); ok {
			h.VIPDevice = v
			if !validDevice(v) {
				l.errorf(a.Expr.Range(), "Invalid device name", "%q is not a network device name (1 to 15 characters, no '/', ':' or spaces). The default is tunl0.", v)
			}
			if len(h.Roles) > 0 && !h.Has(protocol.Director) {
				l.errorf(a.NameRange, "Attribute applies to directors only", "vip_device is where a director puts the VIPs; host %q is not a director. Remove it (realservers always use tunl0).", h.Name)
			}
		}
	}
	if a := c.Attributes["ip_forward"]; a != nil {
		if v, ok := l.boolean(a); ok {
			h.IPForward = v
			if len(h.Roles) > 0 && !h.Has(protocol.Director) {
				l.errorf(a.NameRange, "Attribute applies to directors only", "ip_forward is a director option; host %q is not a director. Remove it.", h.Name)
			}
		}
	}

	s := defaults
	var sshBlock *hcl.Block
	for _, sb := range c.Blocks.OfType("ssh") {
		if sshBlock != nil {
			l.errorf(sb.DefRange, "Duplicate ssh block", "Host %q already has an ssh block at %s. Merge them.", h.Name, sshBlock.DefRange)
			continue
		}
		sshBlock = sb
		s = mergeSSH(defaults, l.sshSpec(sb, hostSSHSchema))
	}
	h.SSH = inventory.Target{Name: h.Name, Address: h.Address.String(), Port: 22, User: "root", KnownHosts: expandHome("~/.ssh/known_hosts")}
	if !h.Address.IsValid() {
		h.SSH.Address = ""
	}
	if s.host != nil {
		h.SSH.Address = *s.host
	}
	if s.port != nil {
		h.SSH.Port = *s.port
	}
	if s.user != nil {
		h.SSH.User = *s.user
	}
	if s.identitySet {
		h.SSH.IdentityFile = s.identity
	}
	if s.knownHosts != nil {
		h.SSH.KnownHosts = *s.knownHosts
	}
	if s.sudo != nil {
		h.SSH.Sudo = *s.sudo
	}
	if s.jump != nil {
		user, addr, port, _ := parseJump(*s.jump)
		if user == "" {
			user = h.SSH.User
		}
		h.SSH.Jump = &inventory.Target{Name: h.Name + " (jump " + *s.jump + ")", Address: addr, Port: port, User: user,
			IdentityFile: h.SSH.IdentityFile, KnownHosts: h.SSH.KnownHosts}
	}
	return h
}

func mergeSSH(def, over sshSpec) sshSpec {
	s := def
	if over.host != nil {
		s.host = over.host
	}
	if over.user != nil {
		s.user = over.user
	}
	if over.port != nil {
		s.port = over.port
	}
	if over.identitySet {
		s.identity, s.identitySet = over.identity, true
	}
	if over.knownHosts != nil {
		s.knownHosts = over.knownHosts
	}
	if over.sudo != nil {
		s.sudo = over.sudo
	}
	if over.jump != nil {
		s.jump = over.jump
	}
	return s
}

func validDevice(s string) bool {
	return s != "" && len(s) <= 15 && s != "." && s != ".." && !strings.ContainsAny(s, "/: \t\n")
}

// service decodes one virtual_service block. Attributes in error keep their zero value.
func (l *loader) service(b *hcl.Block) VirtualService {
	s := VirtualService{Name: b.Labels[0], DeclRange: b.DefRange, Protocol: "tcp", Scheduler: "wlc"}
	c, d := b.Body.Content(serviceSchema)
	l.diags = append(l.diags, d...)

	if a := c.Attributes["vip"]; a == nil {
		l.errorf(b.DefRange, "Missing required attribute \"vip\"", "virtual_service %q needs vip = \"<IPv4>\": the virtual address clients connect to.", s.Name)
	} else if addr, ok := l.ipv4(a, "VIP"); ok {
		s.VIP = addr
		s.ranges.vip = a.Expr.Range()
		if !addr.IsGlobalUnicast() && !addr.IsPrivate() {
			l.errorf(a.Expr.Range(), "Invalid VIP", "%s cannot be a VIP: it must be a unicast address (not unspecified, loopback, link-local, multicast or broadcast).", addr)
		}
	}
	if a := c.Attributes["protocol"]; a != nil {
		if v, ok := l.str(a); ok {
			s.Protocol = v
			if !slices.Contains(Protocols, v) {
				l.errorf(a.Expr.Range(), "Unknown protocol", "Protocol %q is not supported: use \"tcp\" or \"udp\"%s.", v, suggest(strings.ToLower(v), Protocols))
			}
		}
	}
	if a := c.Attributes["port"]; a == nil {
		l.errorf(b.DefRange, "Missing required attribute \"port\"", "virtual_service %q needs port = <1..65535>: the port clients connect to on the VIP.", s.Name)
	} else if v, ok := l.intIn(a, 1, 65535, "port", "a port from 1 to 65535"); ok {
		s.Port = uint16(v)
	}
	if a := c.Attributes["scheduler"]; a != nil {
		if v, ok := l.str(a); ok {
			s.Scheduler = v
			if !slices.Contains(Schedulers, v) {
				l.errorf(a.Expr.Range(), "Unknown scheduler", "Scheduler %q is not an IPVS scheduler%s. Valid schedulers: %s.", v, suggest(v, Schedulers), strings.Join(Schedulers, ", "))
			}
		}
	}
	if a := c.Attributes["persistence"]; a != nil {
		if v, ok := l.intIn(a, 0, 1<<32-1, "persistence", "a number of seconds, 0 (not persistent) or more"); ok {
			s.Persistence = uint32(v)
		}
	}
	if a := c.Attributes["directors"]; a == nil {
		l.errorf(b.DefRange, "Missing required attribute \"directors\"", "virtual_service %q needs directors = [\"<host>\", …]: the director hosts that carry it.", s.Name)
	} else if names, ranges, ok := l.strList(a); ok {
		if len(names) == 0 {
			l.errorf(a.Expr.Range(), "Service has no directors", "virtual_service %q must be carried by at least one director: name director hosts in directors.", s.Name)
		}
		seen := map[string]bool{}
		for i, n := range names {
			if seen[n] {
				l.errorf(ranges[i], "Duplicate director", "Host %q is listed twice in directors. Remove one.", n)
				continue
			}
			seen[n] = true
			s.Directors = append(s.Directors, n)
			s.ranges.directors = append(s.ranges.directors, ranges[i])
		}
	}
	rsSeen := map[string]hcl.Range{}
	for _, rb := range c.Blocks.OfType("realserver") {
		r := RealserverRef{Host: rb.Labels[0], Weight: 1, DeclRange: rb.DefRange}
		if prev, dup := rsSeen[r.Host]; dup {
			l.errorf(rb.LabelRanges[0], "Duplicate realserver", "Realserver %q was previously declared in this service at %s. Remove one of them.", r.Host, prev)
			continue
		}
		rsSeen[r.Host] = rb.DefRange
		rc, d := rb.Body.Content(realserverSchema)
		l.diags = append(l.diags, d...)
		if a := rc.Attributes["weight"]; a != nil {
			if v, ok := l.intIn(a, 0, 65535, "weight", "a weight from 0 to 65535 (0 drains the realserver)"); ok {
				r.Weight = uint32(v)
			}
		}
		if a := rc.Attributes["port"]; a != nil && s.Port != 0 {
			if v, ok := l.intIn(a, 1, 65535, "port", "a port from 1 to 65535"); ok && uint16(v) != s.Port {
				l.errorf(a.Expr.Range(), "Realserver port differs from the service port",
					"In IP-tunnel mode the director forwards the client's packet unchanged inside an IPIP header, so the realserver receives it on the service port %d: tunnel mode cannot map ports. Remove port, or set it to %d and make the realserver listen there.", s.Port, s.Port)
			}
		}
		s.Realservers = append(s.Realservers, r)
		s.ranges.realservers = append(s.ranges.realservers, rb.LabelRanges[0])
	}
	if len(rsSeen) == 0 {
		l.errorf(b.DefRange, "Service has no realservers", "virtual_service %q sends traffic nowhere: add at least one realserver \"<host>\" { weight = 1 } block (or a dynamic \"realserver\" block).", s.Name)
	}
	return s
}

// Value helpers: each evaluates an attribute, records problems, and reports whether the value is
// usable. Unknown values come from an error already reported (a broken local), so they are skipped
// silently.

func (l *loader) value(a *hcl.Attribute, want cty.Type) (cty.Value, bool) {
	v, d := a.Expr.Value(l.ctx)
	l.diags = append(l.diags, d...)
	if d.HasErrors() || !v.IsWhollyKnown() {
		return cty.NilVal, false
	}
	if v.IsNull() {
		l.errorf(a.Expr.Range(), "Null value", "%s must not be null: remove the attribute to use its default.", a.Name)
		return cty.NilVal, false
	}
	v, err := convert.Convert(v, want)
	if err != nil {
		l.errorf(a.Expr.Range(), "Incorrect attribute value type", "Inappropriate value for attribute %q: %s required.", a.Name, want.FriendlyName())
		return cty.NilVal, false
	}
	return v, true
}

func (l *loader) str(a *hcl.Attribute) (string, bool) {
	v, ok := l.value(a, cty.String)
	if !ok {
		return "", false
	}
	return v.AsString(), true
}

func (l *loader) boolean(a *hcl.Attribute) (bool, bool) {
	v, ok := l.value(a, cty.Bool)
	if !ok {
		return false, false
	}
	return v.True(), true
}

// intIn is a whole number in [lo, hi].
func (l *loader) intIn(a *hcl.Attribute, lo, hi int64, what, want string) (int64, bool) {
	v, ok := l.value(a, cty.Number)
	if !ok {
		return 0, false
	}
	f := v.AsBigFloat()
	n, acc := f.Int64()
	if !f.IsInt() || acc != big.Exact || n < lo || n > hi {
		l.errorf(a.Expr.Range(), fmt.Sprintf("Invalid %s", what), "%s is not valid here: %s must be %s.", f.Text('f', -1), a.Name, want)
		return 0, false
	}
	return n, true
}

// strList accepts a string or a list of strings, and returns the range of each element (the whole
// expression's range when the list is computed).
func (l *loader) strList(a *hcl.Attribute) ([]string, []hcl.Range, bool) {
	v, d := a.Expr.Value(l.ctx)
	l.diags = append(l.diags, d...)
	if d.HasErrors() || !v.IsWhollyKnown() {
		return nil, nil, false
	}
	if v.Type() == cty.String {
		return []string{v.AsString()}, []hcl.Range{a.Expr.Range()}, true
	}
	lv, err := convert.Convert(v, cty.List(cty.String))
	if err != nil || lv.IsNull() {
		l.errorf(a.Expr.Range(), "Incorrect attribute value type", "Inappropriate value for attribute %q: a string or a list of strings is required.", a.Name)
		return nil, nil, false
	}
	var out []string
	for _, e := range lv.AsValueSlice() {
		if e.IsNull() {
			l.errorf(a.Expr.Range(), "Null value", "%s must not contain null.", a.Name)
			return nil, nil, false
		}
		out = append(out, e.AsString())
	}
	ranges := make([]hcl.Range, len(out))
	elems, d := hcl.ExprList(a.Expr)
	for i := range ranges {
		if !d.HasErrors() && len(elems) == len(out) {
			ranges[i] = elems[i].Range()
		} else {
			ranges[i] = a.Expr.Range()
		}
	}
	return out, ranges, true
}

// ipv4 is an IPv4 address.
func (l *loader) ipv4(a *hcl.Attribute, what string) (netip.Addr, bool) {
	s, ok := l.str(a)
	if !ok {
		return netip.Addr{}, false
	}
	addr, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		l.errorf(a.Expr.Range(), "Invalid IP address", "%s %q is not an IP address: write an IPv4 address such as 198.18.0.10 (names are not resolved).", what, s)
		return netip.Addr{}, false
	case addr.Is4In6() || !addr.Is4():
		l.errorf(a.Expr.Range(), "IPv6 is not supported", "%s %s is an IPv6 address: only IPv4 is supported yet. Use an IPv4 address.", what, s)
		return netip.Addr{}, false
	case addr.Zone() != "":
		l.errorf(a.Expr.Range(), "Invalid IP address", "%s %q has a zone; write a plain IPv4 address.", what, s)
		return netip.Addr{}, false
	}
	return addr, true
}
