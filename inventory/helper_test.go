package inventory

import (
	"reflect"
	"slices"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestParseHelperFacts(t *testing.T) {
	cases := []struct {
		name string
		out  string
		arch string
		dir  *remoteDir
	}{
		{"nothing installed", "x86_64\n", "x86_64", nil},
		{"directory root's", "aarch64\n0 700\n", "aarch64", &remoteDir{uid: 0, mode: 0o700}},
		{"wrong owner", "x86_64\n65534 755\n", "x86_64", &remoteDir{uid: 65534, mode: 0o755}},
		{"noise is ignored", "x86_64\nstat: cannot stat\n", "x86_64", nil},
		{"the login's words come before the header", "Could not chdir to home directory /home/deploy: No such file or directory\n" + factsHeader + "\naarch64\n", "aarch64", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			arch, dir := parseHelperFacts(c.out)
			if arch != c.arch || !reflect.DeepEqual(dir, c.dir) {
				t.Errorf("got %q %+v, want %q %+v", arch, dir, c.arch, c.dir)
			}
		})
	}
}

func TestCiphersPreferChaCha20AsOpenSSH(t *testing.T) {
	got := ciphers()
	supported := ssh.SupportedAlgorithms().Ciphers
	if len(got) != len(supported) || got[0] != ssh.CipherChaCha20Poly1305 {
		t.Fatalf("ciphers() = %v; want chacha20-poly1305 first, then the rest of %v", got, supported)
	}
	for _, c := range supported {
		if !slices.Contains(got, c) {
			t.Errorf("%s is missing from %v", c, got)
		}
	}
}
