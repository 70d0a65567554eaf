package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Baseline runs the hand-written scripts of the original write-up from dir (testinfra/scripts) on
// the lab: realserver.sh on rs1 and rs2, then director.sh with both realservers. It returns what the
// scripts printed. The scripts are passed as text, since a host may not see dir (its /tmp is its
// own).
func Baseline(dir string) (string, error) {
	var log strings.Builder
	for _, step := range []struct {
		host, script string
		args         []string
	}{
		{"rs1", "realserver.sh", []string{VIP}},
		{"rs2", "realserver.sh", []string{VIP}},
		{"director", "director.sh", []string{VIP, RS1IP, RS2IP}},
	} {
		body, err := os.ReadFile(filepath.Join(dir, step.script))
		if err != nil {
			return log.String(), fmt.Errorf("lab: baseline: %w", err)
		}
		cmd := step.script + " " + strings.Join(step.args, " ")
		out, err := Exec(step.host, append([]string{"sh", "-c", string(body), step.script}, step.args...)...)
		fmt.Fprintf(&log, "[%s] %s\n%s", step.host, cmd, out)
		if err != nil {
			return log.String(), fmt.Errorf("lab: baseline: %s: %s: %w\n%s", step.host, cmd, err, out)
		}
	}
	return log.String(), nil
}
