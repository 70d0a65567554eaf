//go:build !faultinject

package main

import "time"

// faultAt is 0 in normal builds: TUNPLAN_FAULT_AT is honoured only by a helper built with
// -tags faultinject (the fault-injection tests).
func faultAt() int { return 0 }

func faultDelay() time.Duration { return 0 }
