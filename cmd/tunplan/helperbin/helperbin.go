// Package helperbin holds the helper binaries embedded in tunplan, one per architecture, gzip
// compressed, each with the SHA-256 of the binary. `make helper` builds them into bin/ before tunplan
// itself is built.
package helperbin

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/tunplan/tunplan/inventory"
)

//go:embed bin
var embedded embed.FS

// files are the embedded helpers (tests replace them).
var files fs.FS = embedded

// MissingFix tells what to do when a helper is not embedded: `go build` and `go install` leave
// them out, since they are built by `make helper` before tunplan itself.
const MissingFix = "this tunplan was built without its helpers (go install or go build leaves them out): install a release archive, or build with `make build` in a checkout"

// Check fails when a helper of either architecture is missing.
func Check() error {
	if len(Versions()) < len(archs) {
		return errors.New(MissingFix)
	}
	return nil
}

// archs are the architectures tunplan ships a helper for.
var archs = []string{"amd64", "arm64"}

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
		return inventory.Helper{}, fmt.Errorf("no %s helper: %s", arch, MissingFix)
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
	for _, arch := range archs {
		if h, err := (Embedded{}).Binary(arch); err == nil {
			out[arch] = h.SHA256
		}
	}
	return out
}
