//go:build faultinject

package main

import (
	"os"
	"strconv"
)

// faultAt reads TUNPLAN_FAULT_AT: the apply fails before that step (1-based).
func faultAt() int {
	n, _ := strconv.Atoi(os.Getenv("TUNPLAN_FAULT_AT"))
	return n
}
