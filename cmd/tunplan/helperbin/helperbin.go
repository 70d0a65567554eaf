// Package helperbin holds the helper binaries embedded in tunplan, one per architecture, gzip
// compressed, each with the SHA-256 of the binary. `make helper` builds them into bin/ before tunplan
// itself is built.
package helperbin

import (
	"embed"
	"fmt"
	"io/fs"
	"strings"

	"github.com/tunplan/tunplan/inventory"
)

//go:embed bin
var files embed.FS

// goarch maps `uname -m` to Go's architecture names.
var goarch = map[string]string{"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}

// Embedded implements inventory.Helpers from the binaries compiled into tunplan.
type Embedded struct{}

// Binary returns the helper for a machine architecture.
func (Embedded) Binary(machine string) (inventory.Helper, error) {
	arch, ok := goarch[machine]
	if !ok {
		return inventory.Helper{}, fmt.Errorf("no helper for architecture %q (tunplan ships amd64 and arm64)", machine)
	}
	name := "bin/tunplan-helper-linux-" + arch
	gz, err := fs.ReadFile(files, name+".gz")
	sum, serr := fs.ReadFile(files, name+".sha256")
	if err != nil || serr != nil || len(gz) == 0 {
		return inventory.Helper{}, fmt.Errorf("this tunplan was built without the %s helper: build it with `make build`", arch)
	}
	return inventory.Helper{Gzip: gz, SHA256: strings.TrimSpace(string(sum))}, nil
}

// Names lists the file names of the embedded helpers on a host.
func (Embedded) Names() []string {
	var out []string
	for _, sum := range Versions() {
		out = append(out, inventory.Helper{SHA256: sum}.Name())
	}
	return out
}

// Versions lists the embedded helpers with their hashes, for `tunplan version`.
func Versions() map[string]string {
	out := map[string]string{}
	for _, arch := range []string{"amd64", "arm64"} {
		if h, err := (Embedded{}).Binary(arch); err == nil {
			out[arch] = h.SHA256
		}
	}
	return out
}
