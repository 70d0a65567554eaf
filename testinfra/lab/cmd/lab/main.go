// Command lab boots the lab, sets up LVS-TUN on it, and prints what the client saw and what the
// router captured. By default it runs the hand-written baseline of the original write-up (make lab);
// with -tunplan it lets tunplan apply examples/two-region instead (make demo).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"

	"github.com/tunplan/tunplan/testinfra/lab"
)

var (
	tunplan = flag.String("tunplan", "", "path of a tunplan binary: apply examples/two-region with it instead of the baseline scripts")
	timeout = flag.Duration("timeout", 0, "kill the VM after this long (default TUNPLAN_LAB_TIMEOUT or 30m)")
)

func main() {
	flag.Parse()
	if !lab.Inside() {
		if *timeout > 0 {
			os.Setenv("TUNPLAN_LAB_TIMEOUT", timeout.String())
		}
		code, err := lab.Run(os.Args)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(code)
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		os.Exit(1)
	}
}

func run() error {
	if err := lab.Start(); err != nil {
		return err
	}
	defer lab.Stop()
	if *tunplan != "" {
		if err := demo(); err != nil {
			return err
		}
	} else {
		out, err := lab.Baseline("testinfra/scripts")
		fmt.Print(out)
		if err != nil {
			return err
		}
	}
	out, _ := lab.Exec("director", "ipvsadm", "-Ln")
	fmt.Printf("[director] ipvsadm -Ln\n%s", out)
	traffic, err := lab.Probe(6)
	if err != nil {
		return err
	}
	fmt.Print(traffic.Summary())
	if p := traffic.Problems(lab.DirectorIP, lab.RS1IP, lab.RS2IP); len(p) > 0 {
		return fmt.Errorf("failed: %v", p)
	}
	fmt.Println("OK: both realservers answer in turn, IPIP seen at the router, no replies through the director")
	return nil
}

// demo runs tunplan from the control namespace against the lab, as an operator would.
func demo() error {
	vars := []string{"-f", "examples/two-region/tunplan.hcl", "--var", "ssh_key=" + lab.SSHKey(), "--var", "known_hosts=" + lab.KnownHosts()}
	for _, args := range [][]string{{"validate"}, {"apply", "--auto-approve"}, {"diff"}} {
		fmt.Printf("\n$ tunplan %s -f examples/two-region/tunplan.hcl\n", args[0])
		cmd := exec.Command(*tunplan, append(args, vars...)...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("tunplan %s: %w", args[0], err)
		}
	}
	fmt.Println()
	return nil
}
