package imports

import (
	"strings"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/tunplan/tunplan/internal/remotetext"
)

// HCL writes the plan, formatted: a comment (the directors read, what was left out), the ssh
// block, the hosts, the virtual services.
func (p *Plan) HCL() []byte {
	f := hclwrite.NewEmptyFile()
	body := f.Body()
	var from []string
	for _, h := range p.hosts {
		if h.Director {
			from = append(from, h.Name)
		}
	}
	comment := commentLine("Written by tunplan import from the live IPVS table of " + strings.Join(from, ", ") + ".")
	if len(p.skipped) > 0 {
		comment += commentLine("Left out (tunplan does not manage them and leaves them alone):")
		for _, s := range p.skipped {
			comment += commentLine("  " + s)
		}
	}
	body.AppendUnstructuredTokens(hclwrite.Tokens{{Type: hclsyntax.TokenComment, Bytes: []byte(comment)}})
	if attrs := p.ssh.attributes(); len(attrs) > 0 {
		body.AppendNewline()
		b := body.AppendNewBlock("ssh", nil).Body()
		for _, a := range attrs {
			b.SetAttributeValue(a.name, a.value)
		}
	}
	for _, h := range p.hosts {
		body.AppendNewline()
		h.render(body.AppendNewBlock("host", []string{h.Name}).Body())
	}
	for _, s := range p.services {
		body.AppendNewline()
		s.render(body.AppendNewBlock("virtual_service", []string{s.name}).Body())
	}
	return hclwrite.Format(f.Bytes())
}

// commentLine is text as one line of a # comment. The text may be a host's (why a service was
// left out): escaped, a newline in it cannot end the comment and start a line of HCL.
func commentLine(text string) string {
	return "# " + remotetext.Escape(text) + "\n"
}

// render writes the host block's body.
func (h *host) render(b *hclwrite.Body) {
	if len(h.roles) == 1 {
		b.SetAttributeValue("role", cty.StringVal(string(h.roles[0])))
	} else {
		b.SetAttributeValue("role", stringList(h.roles))
	}
	b.SetAttributeValue("address", cty.StringVal(h.address.String()))
	if h.ipForwardOff {
		b.SetAttributeValue("ip_forward", cty.False)
	}
	if h.hideVIPOff {
		b.SetAttributeValue("hide_vip", cty.False)
	}
	if h.SSHAddress != h.address.String() {
		b.AppendNewBlock("ssh", nil).Body().SetAttributeValue("host", cty.StringVal(h.SSHAddress))
	}
}

// render writes the virtual_service block's body.
func (s *service) render(b *hclwrite.Body) {
	b.SetAttributeValue("vip", cty.StringVal(s.svc.Address.String()))
	if s.svc.Protocol != "tcp" {
		b.SetAttributeValue("protocol", cty.StringVal(s.svc.Protocol))
	}
	b.SetAttributeValue("port", cty.NumberIntVal(int64(s.svc.Port)))
	b.SetAttributeValue("scheduler", cty.StringVal(s.svc.Scheduler))
	if s.svc.Persistence != 0 {
		b.SetAttributeValue("persistence", cty.NumberUIntVal(uint64(s.svc.Persistence)))
	}
	b.SetAttributeValue("directors", stringList(s.directors))
	b.AppendNewline()
	for i, d := range s.svc.Destinations {
		if d.Weight == 1 {
			b.AppendUnstructuredTokens(emptyBlock("realserver", s.rs[i]))
			continue
		}
		b.AppendNewBlock("realserver", []string{s.rs[i]}).Body().SetAttributeValue("weight", cty.NumberUIntVal(uint64(d.Weight)))
	}
}

// emptyBlock is `realserver "rs1" {}`: an empty block on one line, which hclwrite does not make.
// The label is quoted as hclwrite quotes every other string, escapes included.
func emptyBlock(typeName, label string) hclwrite.Tokens {
	toks := hclwrite.Tokens{{Type: hclsyntax.TokenIdent, Bytes: []byte(typeName)}}
	toks = append(toks, hclwrite.TokensForValue(cty.StringVal(label))...)
	return append(toks,
		&hclwrite.Token{Type: hclsyntax.TokenOBrace, Bytes: []byte("{")},
		&hclwrite.Token{Type: hclsyntax.TokenCBrace, Bytes: []byte("}")},
		&hclwrite.Token{Type: hclsyntax.TokenNewline, Bytes: []byte("\n")},
	)
}

// stringList is a non-empty list of strings as an HCL value.
func stringList[S ~string](ss []S) cty.Value {
	vs := make([]cty.Value, 0, len(ss))
	for _, s := range ss {
		vs = append(vs, cty.StringVal(string(s)))
	}
	return cty.ListVal(vs)
}
