// Package remotetext makes text a host sent safe to show: in a plan's comment, on the operator's
// terminal. A compromised host controls that text, so a newline in it could start a line of HCL
// in a plan the operator applies to every host, and an escape sequence could rewrite the
// operator's terminal.
package remotetext

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Escape writes every rune of s that is not printable as Go writes it in a quoted string: C0
// controls ("\n", "\x1b"), DEL ("\x7f"), C1 controls ("\u0085"), Unicode's other invisible
// characters (line separators, bidirectional overrides: "\u202e"), and a byte that is no UTF-8 as
// "\xff". The result is one line of printable text, which neither ends a comment nor drives a
// terminal. Printable text, backslashes and quotes included, stays as it is, so that a reason or
// an error reads as the host wrote it, and Escape(Escape(s)) is Escape(s): text escaped at two
// boundaries is escaped once.
func Escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.IsPrint(r):
			b.WriteString(s[i : i+n])
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	return b.String()
}
