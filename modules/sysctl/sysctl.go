// Package sysctl reads and writes kernel parameters under /proc/sys.
package sysctl

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tunplan/tunplan/modules/change"
	"github.com/tunplan/tunplan/modules/protocol"
)

// Kernel is the boundary to the kernel's parameters.
type Kernel interface {
	// Read returns the value, or fs.ErrNotExist when the parameter does not exist (yet).
	Read(key string) (string, error)
	Write(key, value string) error
}

// Proc reads and writes /proc/sys.
type Proc struct{ Root string }

func (p Proc) path(key string) string {
	root := p.Root
	if root == "" {
		root = "/proc/sys"
	}
	return filepath.Join(root, strings.ReplaceAll(key, ".", "/"))
}

func (p Proc) Read(key string) (string, error) {
	b, err := os.ReadFile(p.path(key))
	return normalise(string(b)), err
}

func (p Proc) Write(key, value string) error {
	return os.WriteFile(p.path(key), []byte(value+"\n"), 0o644)
}

// normalise folds white space, as /proc/sys prints some values with tabs.
func normalise(v string) string { return strings.Join(strings.Fields(v), " ") }

// Facts reads keys; parameters that do not exist are left out.
func Facts(k Kernel, keys []string) ([]protocol.Sysctl, error) {
	var out []protocol.Sysctl
	for _, key := range keys {
		v, err := k.Read(key)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("sysctl: read %s: %w", key, err)
		}
		out = append(out, protocol.Sysctl{Key: key, Value: v})
	}
	return out, nil
}

// Diff makes a step for every wanted parameter whose value differs. Parameters that are only in
// current are released, not reverted. A parameter that does not exist yet (tunl0's, before ipip is
// loaded) is written after the modules are loaded, when the engine runs the steps.
func Diff(k Kernel, want, current []protocol.Sysctl) []change.Step {
	have := map[string]string{}
	for _, s := range current {
		have[s.Key] = s.Value
	}
	var steps []change.Step
	for _, s := range want {
		before, ok := have[s.Key]
		if ok && normalise(before) == normalise(s.Value) {
			continue
		}
		act := change.Update
		if !ok {
			act = change.Create
		}
		steps = append(steps, change.Step{
			Change: change.Change{Module: "sysctl", Address: "sysctl " + s.Key, Action: act, Before: before, After: s.Value},
			Do: func() error {
				if err := k.Write(s.Key, s.Value); err != nil {
					return fmt.Errorf("sysctl: write %s=%s: %w", s.Key, s.Value, err)
				}
				return nil
			},
		})
	}
	return steps
}
