// Package helperbin holds the helper binaries embedded in tunplan, one per architecture. `make helper`
// builds them into bin/ before tunplan itself is built.
package helperbin

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
)

//go:embed bin
var files embed.FS

// goarch maps `uname -m` to Go's architecture names.
var goarch = map[string]string{"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}

// Embedded implements inventory.Helpers from the binaries compiled into tunplan.
type Embedded struct{}

// Binary returns the helper for a machine architecture and its SHA-256.
func (Embedded) Binary(machine string) ([]byte, string, error) {
	arch, ok := goarch[machine]
	if !ok {
		return nil, "", fmt.Errorf("no helper for architecture %q (tunplan ships amd64 and arm64)", machine)
	}
	bin, err := fs.ReadFile(files, "bin/tunplan-helper-linux-"+arch)
	if err != nil {
		return nil, "", fmt.Errorf("this tunplan was built without the %s helper: build it with `make build`", arch)
	}
	sum := sha256.Sum256(bin)
	return bin, hex.EncodeToString(sum[:]), nil
}

// Versions lists the embedded helpers with their hashes, for `tunplan version`.
func Versions() map[string]string {
	out := map[string]string{}
	for _, arch := range []string{"amd64", "arm64"} {
		if _, sum, err := (Embedded{}).Binary(arch); err == nil {
			out[arch] = sum
		}
	}
	return out
}
