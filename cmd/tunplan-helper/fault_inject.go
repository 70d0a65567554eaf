//go:build faultinject

package main

import (
	"os"
	"strconv"
	"time"
)

// faultAt reads TUNPLAN_FAULT_AT: the apply fails before that step (1-based).
func faultAt() int {
	n, _ := strconv.Atoi(os.Getenv("TUNPLAN_FAULT_AT"))
	return n
}

// faultDelay reads TUNPLAN_FAULT_DELAY (a Go duration): the helper sleeps before each step, so a
// test can cut the SSH connection while an apply is under way.
func faultDelay() time.Duration {
	d, _ := time.ParseDuration(os.Getenv("TUNPLAN_FAULT_DELAY"))
	return d
}
