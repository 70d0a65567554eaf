package lab

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed init.sh
var initScript []byte

// bootModules are the drivers the initramfs loads to reach the host's root over 9p and to put an
// overlay over it; everything else is loaded later from the host's /lib/modules.
var bootModules = []string{"virtio_pci", "9pnet_virtio", "9p", "overlay"}

// VM is one boot of the lab kernel that runs a script and powers off.
type VM struct {
	Dir     string        // the run directory, shared writable with the VM as /labrun
	Kernel  string        // /boot/vmlinuz-…
	Memory  int           // MiB
	Timeout time.Duration // qemu is killed after this
	Stdout  io.Writer     // the VM's console
}

// NewVM makes a unique run directory and finds the newest kernel that has its modules installed.
func NewVM() (*VM, error) {
	kernel, err := findKernel()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tunplan-lab-")
	if err != nil {
		return nil, err
	}
	timeout := 40 * time.Minute
	if s := os.Getenv("TUNPLAN_LAB_TIMEOUT"); s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			timeout = d
		}
	}
	return &VM{Dir: dir, Kernel: kernel, Memory: 3072, Timeout: timeout, Stdout: os.Stdout}, nil
}

// Run boots the VM, runs script inside (bash, in the VM's root namespace) and returns its exit code.
func (vm *VM) Run(script string) (int, error) {
	if err := os.WriteFile(filepath.Join(vm.Dir, "run.sh"), []byte(script), 0o755); err != nil {
		return -1, err
	}
	initrd := filepath.Join(vm.Dir, "initrd.gz")
	if err := buildInitrd(initrd, kernelRelease(vm.Kernel)); err != nil {
		return -1, fmt.Errorf("lab: initramfs: %w", err)
	}
	args := []string{
		"-accel", "tcg,thread=multi", "-smp", "2", "-m", strconv.Itoa(vm.Memory),
		"-display", "none", "-monitor", "none", "-no-reboot", "-nic", "none",
		"-chardev", "stdio,id=con,signal=off", "-serial", "chardev:con",
		"-kernel", vm.Kernel, "-initrd", initrd,
		"-append", "console=ttyS0 quiet loglevel=1 panic=-1 rdinit=/init",
		"-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
		"-virtfs", "local,path=" + vm.Dir + ",mount_tag=labrun,security_model=none,multidevs=remap",
	}
	cmd := exec.Command("qemu-system-x86_64", args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return -1, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("lab: start qemu: %w", err)
	}
	timer := time.AfterFunc(vm.Timeout, func() {
		fmt.Fprintf(os.Stderr, "lab: VM still running after %v: killing it\n", vm.Timeout)
		cmd.Process.Kill()
	})
	defer timer.Stop()
	copyConsole(vm.Stdout, out)
	if err := cmd.Wait(); err != nil {
		return -1, fmt.Errorf("lab: qemu: %w", err)
	}
	rc, err := os.ReadFile(filepath.Join(vm.Dir, "rc"))
	if err != nil {
		return -1, errors.New("lab: the VM stopped without recording an exit code (see its console above)")
	}
	return strconv.Atoi(strings.TrimSpace(string(rc)))
}

// Cleanup removes the run directory.
func (vm *VM) Cleanup() { os.RemoveAll(vm.Dir) }

// copyConsole copies the serial console line by line without its carriage returns.
func copyConsole(w io.Writer, r io.Reader) {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			w.Write(bytes.ReplaceAll(line, []byte("\r"), nil))
		}
		if err != nil {
			return
		}
	}
}

func findKernel() (string, error) {
	kernels, _ := filepath.Glob("/boot/vmlinuz-*")
	sort.Sort(sort.Reverse(sort.StringSlice(kernels)))
	for _, k := range kernels {
		if _, err := os.Stat(filepath.Join("/lib/modules", kernelRelease(k), "modules.dep")); err == nil {
			return k, nil
		}
	}
	return "", errors.New("lab: no /boot/vmlinuz-* with modules in /lib/modules: install linux-image-amd64 (make deps)")
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
	return gz.Close()
}

// moduleOrder resolves modules.dep into a load order (dependencies first) for the wanted modules.
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
		byName[strings.TrimSuffix(filepath.Base(mod), ".ko")] = mod
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
		m, ok := byName[w]
		if !ok {
			continue // built into this kernel
		}
		visit(m)
	}
	return order, nil
}
