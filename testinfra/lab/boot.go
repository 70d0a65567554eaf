package lab

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tunplan/tunplan/modules/protocol"
)

// Reboot throws away the kernel state of the named hosts as a reboot would, while their /etc and
// /var/lib stay: IPVS flushed, tunl0 and gre0 without addresses and down, no fou listener, the
// lab's stock sysctls. With modules it also unloads ipip, ip_gre, fou and IPVS, which every host
// shares: that is a reboot of every host.
func Reboot(modules bool, names ...string) error {
	var hs []Host
	for _, h := range hosts {
		if slices.Contains(names, h.Name) {
			hs = append(hs, h)
		}
	}
	if len(hs) != len(names) {
		return fmt.Errorf("lab: reboot %v: unknown host", names)
	}
	err := parallelHosts(hs, len(hs), func(h Host) error { return bsh(h.Name, forgetKernel(h)) })
	if err != nil || !modules {
		return err
	}
	return unloadModules()
}

// forgetKernel is the script that throws away, in host h, the kernel state a reboot loses: IPVS
// flushed, tunl0, gre0 and ip6tnl0 without addresses and down, no fou listener, no nftables table
// of tunplan's, the lab's stock sysctls; and /run/tunplan, which a reboot empties too.
func forgetKernel(h Host) string {
	return `set -e
			rm -rf /run/tunplan
			if [ -e /proc/net/ip_vs ]; then /sbin/ipvsadm -C; fi
			for d in tunl0 gre0 ip6tnl0; do if [ -e /sys/class/net/$d ]; then /sbin/ip addr flush dev $d; /sbin/ip link set $d down; fi; done
			if [ -d /sys/module/nf_tables ]; then /usr/sbin/nft delete table inet tunplan 2>/dev/null || true; fi
			if [ -d /sys/module/fou ]; then /sbin/ip fou show | while read _ port _; do /sbin/ip fou del port $port; done; fi
			` + sysctlDefaults(h.Name)
}

// Boot runs in the named host what its boot would, in systemd's order: systemd-modules-load (the
// host's /etc/modules-load.d), systemd-sysctl (its /etc/sysctl.d), the ExecStart of the tunplan
// restore unit installed there, read from the unit file, and then that of the late restore unit
// when there is one (after network-online.target; the lab's network is up). As systemd does, a
// unit whose ConditionPathExists names a missing path is skipped, with a line saying so. It returns
// what they printed.
func Boot(host string) (string, error) {
	early, err := execStart(host, protocol.RestoreUnit)
	if err != nil {
		return "", err
	}
	script := "/lib/systemd/systemd-modules-load; /lib/systemd/systemd-sysctl; " + early // as at boot: the restore runs whether or not the two before it succeeded
	if late, err := execStart(host, protocol.RestoreLateUnit); err == nil {
		script += " && " + late
	}
	return Sh(host, script)
}

// execStart is the command that runs the ExecStart of the unit file at path on host when its
// ConditionPathExists holds, as systemd would start the unit.
func execStart(host, path string) (string, error) {
	unit, err := Sh(host, "cat "+path)
	if err != nil {
		return "", fmt.Errorf("lab: boot %s: no %s: %w (%s)", host, path, err, strings.TrimSpace(unit))
	}
	var cond, cmd string
	for _, l := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(l, "ExecStart="); ok {
			cmd = v
		}
		if v, ok := strings.CutPrefix(l, "ConditionPathExists="); ok {
			cond = v
		}
	}
	if cmd == "" {
		return "", fmt.Errorf("lab: boot %s: %s has no ExecStart", host, path)
	}
	if cond == "" {
		return cmd, nil
	}
	return fmt.Sprintf("if [ -e %[1]s ]; then %[2]s; else echo '%[3]s: skipped: ConditionPathExists=%[1]s failed'; fi", cond, cmd, path), nil
}
