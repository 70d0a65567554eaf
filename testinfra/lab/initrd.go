package lab

import (
	"compress/gzip"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

//go:embed init.sh
var initScript []byte

// bootModules are the drivers the initramfs loads to reach the host's root over 9p and to put an
// overlay over it, dependencies resolved from modules.dep; everything else is loaded later from the
// host's /lib/modules.
var bootModules = []string{"virtio_pci", "9pnet_virtio", "9p", "overlay"}

// findKernel returns the newest /boot/vmlinuz-* whose modules are installed.
func findKernel() (string, error) {
	kernels, _ := filepath.Glob("/boot/vmlinuz-*")
	sort.Sort(sort.Reverse(sort.StringSlice(kernels)))
	for _, k := range kernels {
		if _, err := os.Stat(filepath.Join("/lib/modules", kernelRelease(k), "modules.dep")); err == nil {
			return k, nil
		}
	}
	return "", errors.New("lab: no /boot/vmlinuz-* with modules in /lib/modules: install linux-image-amd64 (testinfra/deps.sh)")
}

func kernelRelease(kernel string) string {
	return strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-")
}

// buildInitrd writes a gzipped newc cpio with busybox, /init and the boot modules in load order.
func buildInitrd(path, release string) error {
	modDir := filepath.Join("/lib/modules", release)
	order, err := moduleOrder(filepath.Join(modDir, "modules.dep"), bootModules)
	if err != nil {
		return err
	}
	busybox, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return fmt.Errorf("busybox-static: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	w := newCpio(gz)
	for _, d := range []string{"bin", "dev", "proc", "sys", "modules"} {
		w.dir(d)
	}
	w.file("bin/busybox", 0o755, busybox)
	w.file("init", 0o755, initScript)
	var names []string
	for _, m := range order {
		if !strings.HasSuffix(m, ".ko") {
			return fmt.Errorf("%s: compressed modules are not supported", m)
		}
		data, err := os.ReadFile(filepath.Join(modDir, m))
		if err != nil {
			return err
		}
		names = append(names, filepath.Base(m))
		w.file("modules/"+filepath.Base(m), 0o644, data)
	}
	w.file("modules.order", 0o644, []byte(strings.Join(names, "\n")+"\n"))
	if err := w.close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	return f.Close()
}

// moduleOrder resolves modules.dep into a load order (dependencies first) for the wanted modules;
// modules that modules.dep does not list are built into the kernel.
func moduleOrder(depFile string, want []string) ([]string, error) {
	data, err := os.ReadFile(depFile)
	if err != nil {
		return nil, err
	}
	deps := map[string][]string{}
	byName := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		mod, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		deps[mod] = strings.Fields(rest)
		name, _, _ := strings.Cut(filepath.Base(mod), ".ko")
		byName[strings.ReplaceAll(name, "-", "_")] = mod
	}
	var order []string
	seen := map[string]bool{}
	var visit func(string)
	visit = func(m string) {
		if seen[m] {
			return
		}
		seen[m] = true
		for _, d := range deps[m] {
			visit(d)
		}
		order = append(order, m)
	}
	for _, w := range want {
		if m, ok := byName[w]; ok {
			visit(m)
		}
	}
	return order, nil
}
