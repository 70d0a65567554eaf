package inventory

import (
	"reflect"
	"testing"
)

func TestParseHelperFacts(t *testing.T) {
	cases := []struct {
		name  string
		out   string
		arch  string
		files map[string]remoteFile
	}{
		{"nothing installed", "x86_64\n", "x86_64", map[string]remoteFile{}},
		{"helper current", "aarch64\n0 700 4096 /var/lib/tunplan/bin\n0 700 3326114 /var/lib/tunplan/bin/tunplan-helper-1ba78ecd12e75bb2\n", "aarch64",
			map[string]remoteFile{
				"/var/lib/tunplan/bin":                                 {uid: 0, mode: 0o700, size: 4096},
				"/var/lib/tunplan/bin/tunplan-helper-1ba78ecd12e75bb2": {uid: 0, mode: 0o700, size: 3326114},
			}},
		{"wrong owner", "x86_64\n65534 755 4096 /var/lib/tunplan/bin\n", "x86_64",
			map[string]remoteFile{"/var/lib/tunplan/bin": {uid: 65534, mode: 0o755, size: 4096}}},
		{"noise is ignored", "x86_64\nstat: cannot stat\n", "x86_64", map[string]remoteFile{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			arch, files := parseHelperFacts(c.out)
			if arch != c.arch || !reflect.DeepEqual(files, c.files) {
				t.Errorf("got %q %+v, want %q %+v", arch, files, c.arch, c.files)
			}
		})
	}
}
