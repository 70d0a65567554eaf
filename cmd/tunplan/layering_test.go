package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The CLI runs on operators' machines (macOS, Windows, Linux): its dependency graph must hold
// nothing that touches a kernel. Only the helper links netlink; the wire protocol both import is
// pure Go.
func TestCLIDependsOnNoKernelPackage(t *testing.T) {
	forbidden := []string{
		"github.com/vishvananda/netlink", "github.com/vishvananda/netns", "github.com/mdlayher/netlink",
		"github.com/mdlayher/genetlink", "github.com/cloudflare/ipvs",
		"github.com/tunplan/tunplan/modules/host", "github.com/tunplan/tunplan/modules/ipvs",
		"github.com/tunplan/tunplan/modules/kmod", "github.com/tunplan/tunplan/modules/sysctl",
		"github.com/tunplan/tunplan/modules/tunnel", "github.com/tunplan/tunplan/modules/probe",
		"github.com/tunplan/tunplan/modules/sockets", "github.com/tunplan/tunplan/modules/route", "github.com/tunplan/tunplan/modules/fou",
	}
	for _, goos := range []string{"linux", "darwin", "windows"} {
		for _, pkg := range []string{".", "github.com/tunplan/tunplan/modules/protocol"} {
			cmd := exec.Command("go", "list", "-deps", pkg)
			cmd.Env = append(cmd.Environ(), "GOOS="+goos, "GOARCH=amd64", "CGO_ENABLED=0")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list -deps %s (GOOS=%s): %v", pkg, goos, err)
			}
			deps := strings.Fields(string(out))
			if len(deps) < 10 {
				t.Fatalf("go list -deps %s listed only %v", pkg, deps)
			}
			for _, d := range deps {
				for _, f := range forbidden {
					if d == f || strings.HasPrefix(d, f+"/") {
						t.Errorf("GOOS=%s: %s depends on %s", goos, pkg, d)
					}
				}
			}
		}
	}
}
