package helperbin

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

// Each embedded helper unpacks to the hash tunplan checks on the host; `make helper` builds
// them before the tests run.
func TestEmbeddedHelpersUnpackToTheirHash(t *testing.T) {
	for _, machine := range []string{"x86_64", "aarch64"} {
		h, err := Embedded{}.Binary(machine)
		if err != nil {
			t.Fatalf("%s: %v", machine, err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(h.Gzip))
		if err != nil {
			t.Fatalf("%s: %v", machine, err)
		}
		bin, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: %v", machine, err)
		}
		sum := sha256.Sum256(bin)
		if hex.EncodeToString(sum[:]) != h.SHA256 {
			t.Errorf("%s: unpacks to sha256 %x; recorded %s", machine, sum, h.SHA256)
		}
		if len(h.Gzip) >= len(bin)/2 {
			t.Errorf("%s: %d bytes compressed of %d", machine, len(h.Gzip), len(bin))
		}
	}
	if _, err := (Embedded{}).Binary("mips"); err == nil {
		t.Error("a helper for mips")
	}
}

// `go install` builds tunplan without running `make helper`: Check then names the fix.
func TestCheckNamesTheFixWithoutHelpers(t *testing.T) {
	if err := Check(); err != nil {
		t.Fatalf("with both helpers built: %v", err)
	}
	defer func(saved fs.FS) { files = saved }(files)
	files = fstest.MapFS{"bin/README": {Data: []byte("build output")}}
	if err := Check(); err == nil || !strings.Contains(err.Error(), "make build") {
		t.Errorf("without helpers: %v", err)
	}
	if _, err := (Embedded{}).Binary("x86_64"); err == nil || !strings.Contains(err.Error(), "release archive") {
		t.Errorf("Binary without helpers: %v", err)
	}
}
