// Command bench is `make bench`: it boots the lab VM and, inside it, measures tunplan against its
// peers on the same kernel in the same run — the helper against ipvsadm-restore and keepalived for a
// 10,000-destination IPVS table, tunplan against Ansible for a fan-out to 8, 32 and 64 hosts, the
// helper's upload, and the CLI's peak memory for a 1,000-host plan. It writes
// testinfra/bench/results.json (medians, the keys the performance issue names) and results.md (the
// table the README quotes).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/tunplan/tunplan/testinfra/lab"
)

var (
	runs    = flag.Int("runs", 3, "runs of each measurement; the median is reported")
	only    = flag.String("only", "", "comma-separated benchmarks to run (ipvs, fanout, plan, health); default all")
	timeout = flag.Duration("timeout", 0, "how long the lab VM may run (default: sized from -runs and -only; TUNPLAN_LAB_TIMEOUT also sets it)")
)

// benches are the benchmarks, in order, with the minutes one run of each took on the 2-core
// machine without KVM that the README's table comes from.
var benches = []struct {
	name    string
	run     func(*Bench) error
	minutes float64
}{{"ipvs", benchIPVS, 2}, {"fanout", benchFanout, 6}, {"plan", benchPlan, 0.5}, {"health", benchHealth, 3}}

// selected reports whether -only asks for the benchmark.
func selected(name string) bool {
	return *only == "" || strings.Contains(","+*only+",", ","+name+",")
}

// vmTimeout sizes the lab VM's limit from the work asked: the measured minutes of each selected
// benchmark per run, three times over (a machine 2.6× slower than the measured one has been seen),
// plus the boot.
func vmTimeout() time.Duration {
	if *timeout > 0 {
		return *timeout
	}
	minutes := 10.0
	for _, bn := range benches {
		if selected(bn.name) {
			minutes += 3 * bn.minutes * float64(*runs)
		}
	}
	return time.Duration(minutes * float64(time.Minute))
}

// Bench collects the figures of one run.
type Bench struct {
	Runs   int
	Values map[string]float64 // results.json: key → median
	Rows   []Row              // results.md, in order
	Done   bool               // every selected benchmark finished; until then the results say "partial"
	dir    string             // where results are written as they are measured
}

// Row is one line of the table: tunplan's figure, the peer's, and their ratio.
type Row struct {
	What, Unit     string
	Tunplan        float64
	Peer           string
	PeerValue      float64 // 0: no peer
	Target, Detail string
}

func main() {
	if spec := os.Getenv(lab.LoopEnv); spec != "" { // the lab client's request loop (health)
		os.Exit(lab.RequestLoop(spec))
	}
	flag.Parse()
	if !lab.Inside() {
		if err := outside(); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	b := &Bench{Runs: *runs, Values: map[string]float64{}, dir: lab.RunDir()}
	err := inside(b)
	b.Done = err == nil
	if werr := b.write(); err == nil {
		err = werr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// outside builds tunplan and the helper, boots the lab with this program inside, and copies the
// results back into testinfra/bench.
func outside() error {
	dir, err := os.MkdirTemp("", "tunplan-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, args := range [][]string{
		{"make", "-s", "helper"},
		{"go", "build", "-trimpath", "-o", filepath.Join(dir, "tunplan"), "./cmd/tunplan"},
		{"go", "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(dir, "tunplan-helper"), "./cmd/tunplan-helper"},
	} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%v: %w", args, err)
		}
	}
	if os.Getenv("TUNPLAN_LAB_TIMEOUT") == "" {
		os.Setenv("TUNPLAN_LAB_TIMEOUT", vmTimeout().String())
	}
	fmt.Fprintf(os.Stderr, "bench: the lab VM may run for %s\n", os.Getenv("TUNPLAN_LAB_TIMEOUT"))
	os.Setenv("TUNPLAN_BIN", filepath.Join(dir, "tunplan"))
	os.Setenv("TUNPLAN_HELPER", filepath.Join(dir, "tunplan-helper"))
	code, err := lab.RunCollect(os.Args, func(run string) error {
		for _, f := range []string{"results.json", "results.md"} {
			b, err := os.ReadFile(filepath.Join(run, f))
			if os.IsNotExist(err) {
				continue // nothing measured yet
			}
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join("testinfra", "bench", f), b, 0o644); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && code != 0 {
		err = fmt.Errorf("the benchmark inside the VM exited %d", code)
	}
	if md, rerr := os.ReadFile(filepath.Join("testinfra", "bench", "results.md")); rerr == nil {
		fmt.Printf("\n%s", md)
	}
	return err
}

func inside(b *Bench) error {
	if err := lab.Start(); err != nil {
		return err
	}
	defer lab.Stop()
	for _, bn := range benches {
		if !selected(bn.name) {
			continue
		}
		fmt.Printf("bench: %s\n", bn.name)
		if err := bn.run(b); err != nil {
			return fmt.Errorf("%s: %w", bn.name, err)
		}
	}
	return nil
}

// median runs measure b.Runs times and returns the median of what it returned.
func (b *Bench) median(measure func() (float64, error)) (float64, error) {
	var xs []float64
	for i := 0; i < b.Runs; i++ {
		x, err := measure()
		if err != nil {
			return 0, err
		}
		xs = append(xs, x)
	}
	return middle(xs), nil
}

// middle is the median of xs (the upper one of an even count).
func middle(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// seconds times fn.
func seconds(fn func() error) (float64, error) {
	start := time.Now()
	err := fn()
	return time.Since(start).Seconds(), err
}

// set records a figure and writes the results at once, so a run cut short keeps what it measured.
func (b *Bench) set(key string, v float64) {
	b.Values[key] = v
	fmt.Printf("bench:   %s = %.4g\n", key, v)
	b.writeSoFar()
}

// row adds a line to the table and writes the results at once.
func (b *Bench) row(r Row) {
	b.Rows = append(b.Rows, r)
	b.writeSoFar()
}

func (b *Bench) writeSoFar() {
	if err := b.write(); err != nil {
		fmt.Fprintln(os.Stderr, "bench: writing results:", err)
	}
}

// write stores results.json and results.md in b.dir.
func (b *Bench) write() error {
	dir := b.dir
	out := map[string]any{"runs": b.Runs, "kernel": kernelRelease(), "date": time.Now().UTC().Format(time.RFC3339), "complete": b.Done}
	for k, v := range b.Values {
		out[k] = v
	}
	j, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(j, '\n'), 0o644); err != nil {
		return err
	}
	var md strings.Builder
	fmt.Fprintf(&md, "Medians of %d runs, lab VM (qemu TCG, 2 vCPUs, kernel %s), %s.\n\n", b.Runs, kernelRelease(), time.Now().UTC().Format("2006-01-02"))
	if !b.Done {
		md.WriteString("**Partial:** the run ended (failed, or the lab VM's time limit) before every benchmark finished; these are the figures measured until then.\n\n")
	}
	md.WriteString("| measurement | tunplan | peer | peer's figure | tunplan/peer | target |\n|---|---|---|---|---|---|\n")
	for _, r := range b.Rows {
		peer, pv, ratio := "—", "—", "—"
		if r.PeerValue > 0 {
			peer, pv, ratio = r.Peer, format(r.PeerValue, r.Unit), fmt.Sprintf("%.3f", r.Tunplan/r.PeerValue)
		}
		fmt.Fprintf(&md, "| %s | %s | %s | %s | %s | %s |\n", r.What, format(r.Tunplan, r.Unit), peer, pv, ratio, r.Target)
	}
	return os.WriteFile(filepath.Join(dir, "results.md"), []byte(md.String()), 0o644)
}

func format(v float64, unit string) string {
	switch unit {
	case "s":
		return fmt.Sprintf("%.3f s", v)
	case "bytes":
		return fmt.Sprintf("%.0f B", v)
	case "vCPU":
		return fmt.Sprintf("%.3f vCPU", v)
	}
	return fmt.Sprintf("%g %s", v, unit)
}

func kernelRelease() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}
