// Package sysctl reads and writes kernel parameters under /proc/sys.
package sysctl

// Sysctl is one kernel parameter, named as sysctl(8) names it: "net.ipv4.conf.all.rp_filter".
type Sysctl struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}
