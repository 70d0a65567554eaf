// Command lab boots the lab, runs the hand-written baseline of the original write-up, and prints
// what the client saw and what the router captured (make lab).
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tunplan/tunplan/testinfra/lab"
)

func main() {
	if !lab.Inside() {
		start := time.Now()
		code, err := lab.Run(os.Args)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("lab: done in %.1fs (exit %d)\n", time.Since(start).Seconds(), code)
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
	scripts, err := filepath.Abs("testinfra/scripts")
	if err != nil {
		return err
	}
	for _, step := range []struct{ host, cmd string }{
		{"rs1", scripts + "/realserver.sh " + lab.VIP},
		{"rs2", scripts + "/realserver.sh " + lab.VIP},
		{"director", scripts + "/director.sh " + lab.VIP + " 198.18.1.183 198.18.10.182"},
	} {
		out, err := lab.Sh(step.host, step.cmd)
		fmt.Printf("[%s] %s\n%s", step.host, step.cmd, out)
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
	if p := traffic.Problems("198.18.48.181", "198.18.1.183", "198.18.10.182"); len(p) > 0 {
		return fmt.Errorf("baseline failed: %v", p)
	}
	fmt.Println("baseline: both realservers answer in turn, IPIP seen at the router, no replies through the director")
	return nil
}
