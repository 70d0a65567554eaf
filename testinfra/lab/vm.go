package lab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// bootMarker is the console line /init prints right before it runs the run's script.
const bootMarker = "lab: init done"

// VM is one boot of the lab kernel that runs a script and powers off.
type VM struct {
	Dir     string        // the run directory, shared writable with the VM as /labrun
	Kernel  string        // /boot/vmlinuz-…
	Memory  int           // MiB
	Timeout time.Duration // qemu is killed after this
	Keep    bool          // keep Dir after the run
	Stdout  io.Writer     // the VM's console
}

// NewVM makes a unique run directory and finds the newest kernel that has its modules installed.
// TUNPLAN_LAB_TIMEOUT (a Go duration, default 30m) bounds the run; TUNPLAN_LAB_KEEP=1 keeps the run
// directory.
func NewVM() (*VM, error) {
	kernel, err := findKernel()
	if err != nil {
		return nil, err
	}
	timeout := 30 * time.Minute
	if s := os.Getenv("TUNPLAN_LAB_TIMEOUT"); s != "" {
		if timeout, err = time.ParseDuration(s); err != nil {
			return nil, fmt.Errorf("lab: TUNPLAN_LAB_TIMEOUT: %w", err)
		}
	}
	dir, err := os.MkdirTemp("", "tunplan-lab-")
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // non-root lab users reach authorized_keys through it
		return nil, fmt.Errorf("lab: %w", err)
	}
	keep := os.Getenv("TUNPLAN_LAB_KEEP") == "1"
	return &VM{Dir: dir, Kernel: kernel, Memory: 3072, Timeout: timeout, Keep: keep, Stdout: os.Stdout}, nil
}

// Run boots the VM, runs script inside (bash, in the VM's root namespace) and returns its exit code.
// The VM's console goes to vm.Stdout; an interrupt or the timeout kills qemu.
func (vm *VM) Run(script string) (int, error) {
	if err := os.WriteFile(filepath.Join(vm.Dir, "run.sh"), []byte(script), 0o755); err != nil {
		return -1, fmt.Errorf("lab: %w", err)
	}
	initrd := filepath.Join(vm.Dir, "initrd.gz")
	if err := buildInitrd(initrd, kernelRelease(vm.Kernel)); err != nil {
		return -1, fmt.Errorf("lab: initramfs: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, vm.Timeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		stuck, err := vm.boot(ctx, initrd)
		if err != nil {
			return -1, err
		}
		if !stuck {
			break
		}
		if attempt == bootAttempts {
			return -1, fmt.Errorf("lab: the VM's CPUs locked up before its topology was up, %d times in a row", attempt)
		}
		fmt.Fprintf(vm.Stdout, "lab: the VM's CPUs locked up before its topology was up (a qemu TCG hang): booting it again (attempt %d of %d)\n", attempt+1, bootAttempts)
	}
	rc, err := os.ReadFile(filepath.Join(vm.Dir, "rc"))
	if err != nil {
		return -1, errors.New("lab: the VM stopped without recording an exit code (see its console above)")
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(rc)))
	if err != nil {
		return -1, fmt.Errorf("lab: exit code file: %w", err)
	}
	return code, nil
}

// bootAttempts is how many times Run boots a VM whose CPUs lock up before its topology is up. Under
// qemu's TCG both vCPUs have been seen to spin in the kernel from the first seconds of a boot
// ("watchdog: BUG: soft lockup"), never to recover; nothing of the run has happened yet then.
const bootAttempts = 3

// boot runs qemu once. stuck reports that it was killed because the kernel reported a soft lockup
// before the topology was up.
func (vm *VM) boot(ctx context.Context, initrd string) (stuck bool, err error) {
	ctx, kill := context.WithCancel(ctx)
	defer kill()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", vm.qemuArgs(initrd)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // no orphan VM if we are killed
	out, err := cmd.StdoutPipe()
	if err != nil {
		return false, fmt.Errorf("lab: %w", err)
	}
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("lab: start qemu: %w", err)
	}
	stuck = vm.copyConsole(out, start, kill)
	err = cmd.Wait()
	fmt.Fprintf(vm.Stdout, "lab: VM ran %.1fs\n", time.Since(start).Seconds())
	switch {
	case stuck:
		return true, nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return false, fmt.Errorf("lab: VM still running after %v (TUNPLAN_LAB_TIMEOUT): killed it", vm.Timeout)
	case ctx.Err() != nil:
		return false, errors.New("lab: interrupted: killed the VM")
	case err != nil:
		return false, fmt.Errorf("lab: qemu: %w", err)
	}
	return false, nil
}

func (vm *VM) qemuArgs(initrd string) []string {
	return []string{
		"-accel", "tcg,thread=multi", "-smp", "2", "-m", strconv.Itoa(vm.Memory),
		"-display", "none", "-monitor", "none", "-no-reboot", "-nic", "none",
		"-chardev", "stdio,id=con,signal=off", "-serial", "chardev:con",
		"-kernel", vm.Kernel, "-initrd", initrd,
		"-append", "console=ttyS0 quiet loglevel=1 panic=-1 rdinit=/init",
		"-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
		"-virtfs", "local,path=" + vm.Dir + ",mount_tag=labrun,security_model=none,multidevs=remap",
	}
}

// Cleanup removes the run directory, unless asked to keep it.
func (vm *VM) Cleanup() {
	if vm.Keep {
		fmt.Fprintf(os.Stderr, "lab: kept the run directory %s\n", vm.Dir)
		return
	}
	os.RemoveAll(vm.Dir)
}

// copyConsole copies the serial console line by line without its carriage returns, reports the boot
// time when /init hands over to the run's script, and drops the kernel's power-down message. A soft
// lockup reported before the topology is up kills the VM (kill) and makes it return true.
func (vm *VM) copyConsole(r io.Reader, start time.Time, kill func()) (stuck bool) {
	br := bufio.NewReader(r)
	up := false
	for {
		line, err := br.ReadBytes('\n')
		line = bytes.ReplaceAll(line, []byte("\r"), nil)
		switch trimmed := bytes.TrimSpace(line); {
		case bytes.HasSuffix(trimmed, []byte(bootMarker)):
			line = fmt.Appendf(nil, "lab: VM booted in %.1fs\n", time.Since(start).Seconds())
		case bytes.HasSuffix(trimmed, []byte("] reboot: Power down")):
			line = nil // the kernel's last word on every run
		case bytes.HasPrefix(trimmed, []byte("lab: topology up")):
			up = true
		case !up && !stuck && bytes.Contains(trimmed, []byte("watchdog: BUG: soft lockup")):
			stuck = true
			kill()
		}
		vm.Stdout.Write(line)
		if err != nil {
			return stuck
		}
	}
}
