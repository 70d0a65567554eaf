// Package kmod makes sure kernel modules (ipip, ip_vs, ip_vs_<scheduler>) are loaded. It never
// unloads one: a module may serve more than tunplan.
package kmod

import (
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/tunplan/tunplan/modules/change"
)

// Kernel is the boundary to the host's module loader.
type Kernel interface {
	Loaded(name string) bool
	Load(name string) error
}

// System loads modules with modprobe and reads /sys/module.
type System struct{}

func (System) Loaded(name string) bool {
	_, err := os.Stat("/sys/module/" + strings.ReplaceAll(name, "-", "_"))
	return err == nil
}

func (System) Load(name string) error {
	if out, err := exec.Command("modprobe", name).CombinedOutput(); err != nil {
		return fmt.Errorf("modprobe %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Facts lists which of names are loaded.
func Facts(k Kernel, names []string) []string {
	var out []string
	for _, n := range names {
		if k.Loaded(n) {
			out = append(out, n)
		}
	}
	return out
}

// Diff makes a step for every wanted module that is not loaded.
func Diff(k Kernel, want, loaded []string) []change.Step {
	have := map[string]bool{}
	for _, n := range loaded {
		have[n] = true
	}
	var steps []change.Step
	for _, n := range want {
		if have[n] {
			continue
		}
		steps = append(steps, change.Step{
			Change: change.Change{Module: "kmod", Address: "kmod " + n, Action: change.Create, After: "loaded"},
			Do:     func() error { return k.Load(n) },
		})
	}
	return steps
}
