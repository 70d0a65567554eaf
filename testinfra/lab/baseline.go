package lab

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Baseline runs the hand-written scripts of the original write-up from dir (testinfra/scripts) on
// the lab: realserver.sh on rs1 and rs2, then director.sh with both realservers. It returns what the
// scripts printed.
func Baseline(dir string) (string, error) {
	var log strings.Builder
	for _, step := range []struct{ host, script string }{
		{"rs1", "realserver.sh " + VIP},
		{"rs2", "realserver.sh " + VIP},
		{"director", "director.sh " + VIP + " " + RS1IP + " " + RS2IP},
	} {
		cmd := filepath.Join(dir, step.script)
		out, err := Sh(step.host, cmd)
		fmt.Fprintf(&log, "[%s] %s\n%s", step.host, cmd, out)
		if err != nil {
			return log.String(), fmt.Errorf("lab: baseline: %s: %s: %w\n%s", step.host, cmd, err, out)
		}
	}
	return log.String(), nil
}
