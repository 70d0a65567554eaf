package remotetext

import (
	"testing"
	"unicode"
)

func TestEscape(t *testing.T) {
	cases := []struct{ in, want string }{
		{"fwmark 3: a firewall-mark service", "fwmark 3: a firewall-mark service"},
		{`quotes " and \ stay`, `quotes " and \ stay`},
		{"Größe ✓", "Größe ✓"},
		{"x\n}\nvirtual_service \"evil\" {", `x\n}\nvirtual_service "evil" {`},
		{"\x1b]0;pwned\x07", `\x1b]0;pwned\a`},
		{"\x1b[2J\r\t\x00\x7f", `\x1b[2J\r\t\x00\x7f`},
		{"c1 \u0085 \u009b31m", `c1 \u0085 \u009b31m`},
		{"line\u2028sep \u202eevil", `line\u2028sep \u202eevil`},
		{"bad \xff\xc3 utf-8", `bad \xff\xc3 utf-8`},
	}
	for _, c := range cases {
		got := Escape(c.in)
		if got != c.want {
			t.Errorf("Escape(%q) = %q, want %q", c.in, got, c.want)
		}
		if again := Escape(got); again != got {
			t.Errorf("Escape(%q) = %q: escaping twice changed it", got, again)
		}
		for _, r := range got {
			if !unicode.IsPrint(r) {
				t.Errorf("Escape(%q) = %q keeps %U", c.in, got, r)
			}
		}
	}
}
