package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
)

// benchPlan measures the CLI's peak memory (and time) for a plan of 1,000 realservers and two
// directors: examples/large with every region ten times bigger, parsed, validated and rendered into
// each host's desired state by `tunplan validate` (no SSH).
func benchPlan(b *Bench) error {
	src, err := os.ReadFile("examples/large/tunplan.hcl")
	if err != nil {
		return err
	}
	// 25+25+30+20 realservers → 250+250+300+200, in /22 subnets so that they fit.
	plan := regexp.MustCompile(`count = (\d+)`).ReplaceAllString(string(src), "count = ${1}0")
	plan = strings.ReplaceAll(plan, `.0/24"`, `.0/22"`)
	path := filepath.Join(os.TempDir(), "plan1000.hcl")
	if err := os.WriteFile(path, []byte(plan), 0o644); err != nil {
		return err
	}
	var rss []float64
	secs, err := b.median(func() (float64, error) {
		var out strings.Builder
		cmd := exec.Command(os.Getenv("TUNPLAN_BIN"), "validate", "-f", path)
		cmd.Stdout, cmd.Stderr = &out, &out
		s, err := seconds(cmd.Run)
		if err != nil {
			return 0, fmt.Errorf("tunplan validate: %w\n%s", err, out.String())
		}
		if !strings.Contains(out.String(), "1002 hosts") {
			return 0, fmt.Errorf("the plan does not have 1,002 hosts: %s", out.String())
		}
		rss = append(rss, float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss*1024))
		return s, nil
	})
	if err != nil {
		return err
	}
	peak := middle(rss)
	b.set("plan1000_peak_rss_bytes", peak)
	b.set("plan1000_validate_s", secs)
	b.row(Row{What: "1,002-host plan: parse + desired state per host (`tunplan validate`), peak RSS", Unit: "bytes", Tunplan: peak})
	b.row(Row{What: "1,002-host plan: parse + desired state per host, time", Unit: "s", Tunplan: secs})
	return nil
}
