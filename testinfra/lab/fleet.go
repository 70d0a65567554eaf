package lab

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// The simulated realservers of the fan-out benchmark: extra hosts like rs1 and rs2 (own network,
// mount and UTS namespaces, private /tmp, /var/lib, /var/log, /run, /etc/sysctl.d and /root, a real
// sshd on the management network) but without nginx. Host i (from 1) is named fleetNN, has the
// management address 198.19.0.(100+i) and a data address in one of two regions behind the router:
// odd hosts in FleetRegion1, even hosts in FleetRegion2.
const (
	FleetRegion1 = "198.18.2.0/24"
	FleetRegion2 = "198.18.11.0/24"

	fleetRouter1 = "198.18.2.254"
	fleetRouter2 = "198.18.11.254"
	maxFleet     = 150 // 198.19.0.101 … 198.19.0.250
	fleetWorkers = 16  // set-up scripts at once: the VM has two (emulated) CPUs
)

var (
	fleet      []Host
	fleetKnown []byte // known_hosts before the fleet's keys were added; nil when unchanged
	// fleetBridges: the router has its bridges for the fleet's two regions.
	fleetBridges bool
)

// AddRealservers creates n simulated realserver hosts (at most 150 in all), in parallel, and returns
// them; their host keys are added to KnownHosts and root accepts SSHKey. They are not reset by Reset
// (see ResetRealservers); Stop removes them with the rest of the lab, RemoveRealservers before that.
func AddRealservers(n int) ([]Host, error) {
	start := time.Now()
	if n < 1 || len(fleet)+n > maxFleet {
		return nil, fmt.Errorf("lab: AddRealservers(%d): between 1 and %d simulated realservers in all", n, maxFleet-len(fleet))
	}
	if _, ok := procs["router"]; !ok {
		return nil, fmt.Errorf("lab: AddRealservers: the lab is not built (call Start first)")
	}
	pub, err := os.ReadFile(SSHKey() + ".pub")
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	var added []Host
	var known strings.Builder
	for k := 0; k < n; k++ {
		i := len(fleet) + k + 1
		h := Host{Name: fmt.Sprintf("fleet%02d", i), Mgmt: fmt.Sprintf("198.19.0.%d", 100+i)}
		if i%2 == 1 {
			h.Data, gateway[h.Name] = fmt.Sprintf("198.18.2.%d", 10+i), fleetRouter1
		} else {
			h.Data, gateway[h.Name] = fmt.Sprintf("198.18.11.%d", 10+i), fleetRouter2
		}
		line, err := fleetKeys(h, pub)
		if err != nil {
			return nil, err
		}
		known.WriteString(line)
		added = append(added, h)
		if err := spawn(h); err != nil {
			fleet = append(fleet, added...) // so that RemoveRealservers finds what was started
			return nil, err
		}
	}
	fleet = append(fleet, added...)
	if err := fleetWiring(added); err != nil {
		return nil, err
	}
	if err := parallelHosts(added, fleetWorkers, func(h Host) error { return bsh(h.Name, fleetSetup(h)) }); err != nil {
		return nil, err
	}
	if fleetKnown == nil {
		if fleetKnown, err = os.ReadFile(KnownHosts()); err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
	}
	f, err := os.OpenFile(KnownHosts(), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	_, err = f.WriteString(known.String())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("lab: known_hosts: %w", err)
	}
	if err := waitListen(added); err != nil {
		return nil, err
	}
	fmt.Printf("lab: %d simulated realservers up in %.1fs\n", n, time.Since(start).Seconds())
	return append([]Host(nil), added...), nil
}

// Realservers lists the simulated realservers AddRealservers created.
func Realservers() []Host { return append([]Host(nil), fleet...) }

// ResetRealservers returns the simulated realservers to their state right after boot: tunl0 without
// addresses and down, the stock sysctls, no tunplan state (the helper included). Call it before Reset,
// which unloads ipip.
func ResetRealservers() error {
	return parallelHosts(fleet, fleetWorkers, func(h Host) error {
		return bsh(h.Name, `set -e
			if [ -e /sys/class/net/tunl0 ]; then /sbin/ip addr flush dev tunl0; /sbin/ip link set tunl0 down; fi
			rm -rf /var/lib/tunplan /etc/sysctl.d/*
			`+sysctlDefaults(h.Name))
	})
}

// RemoveRealservers stops the simulated realservers and removes their links, the router's bridges for
// them and their known_hosts entries.
func RemoveRealservers() error {
	var first error
	keep := func(err error) {
		if first == nil {
			first = err
		}
	}
	for _, h := range fleet {
		cmd, ok := procs[h.Name]
		if ok {
			ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid))
			if err == nil {
				err = killNamespace(ns)
			}
			if err != nil {
				keep(fmt.Errorf("lab: remove %s: %w", h.Name, err))
			}
			cmd.Wait()
			delete(procs, h.Name)
		}
		delete(gateway, h.Name)
		os.RemoveAll(filepath.Join(stateDir, h.Name))
	}
	if len(fleet) > 0 {
		if _, ok := procs["router"]; ok {
			if err := bsh("router", "/sbin/ip link del fleet1 2>/dev/null; /sbin/ip link del fleet2 2>/dev/null; true"); err != nil {
				keep(err)
			}
		}
	}
	fleet, fleetBridges = nil, false
	if fleetKnown != nil {
		if err := os.WriteFile(KnownHosts(), fleetKnown, 0o644); err != nil {
			keep(fmt.Errorf("lab: known_hosts: %w", err))
		}
		fleetKnown = nil
	}
	return first
}

// fleetKeys writes a host's sshd key and authorized_keys under the VM's state directory (a tmpfs:
// sshd reads both on every connection) and returns its known_hosts line. Keys are made here, in Go:
// ssh-keygen under emulation costs an exec per host.
func fleetKeys(h Host, clientPub []byte) (string, error) {
	dir := filepath.Join(stateDir, h.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("lab: %w", err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("lab: host key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "tunplan-lab")
	if err != nil {
		return "", fmt.Errorf("lab: host key: %w", err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("lab: host key: %w", err)
	}
	for name, data := range map[string][]byte{
		"ssh_host_ed25519_key":     pem.EncodeToMemory(block),
		"ssh_host_ed25519_key.pub": ssh.MarshalAuthorizedKey(sp),
		"authorized_keys":          clientPub,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return "", fmt.Errorf("lab: %w", err)
		}
	}
	return fmt.Sprintf("%s %s", h.Mgmt, ssh.MarshalAuthorizedKey(sp)), nil
}

// fleetWiring links the new hosts: a veth into the management bridge (made in the control namespace)
// and a data veth into the router, whose end joins the region's bridge (made on first use).
func fleetWiring(hs []Host) error {
	router := procs["router"].Process.Pid
	var ctl, rt strings.Builder
	rt.WriteString("/sbin/ip -batch - <<'EOF'\n")
	if !fleetBridges {
		for _, b := range [][2]string{{"fleet1", fleetRouter1}, {"fleet2", fleetRouter2}} {
			fmt.Fprintf(&rt, "link add %[1]s type bridge\naddr add %[2]s/24 dev %[1]s\nlink set %[1]s up\nrule add pref 101 iif %[1]s to %[3]s prohibit\n", b[0], b[1], MgmtPrefix)
		}
	}
	for _, h := range hs {
		pid := procs[h.Name].Process.Pid
		fmt.Fprintf(&ctl, "link add m-%[1]s type veth peer name mgmt0 netns %[2]d\nlink set m-%[1]s master mgmt0 up\n", h.Name, pid)
		fmt.Fprintf(&ctl, "link add f-%s netns %d type veth peer name eth0 netns %d\n", h.Name, router, pid)
		br := "fleet1"
		if gateway[h.Name] == fleetRouter2 {
			br = "fleet2"
		}
		fmt.Fprintf(&rt, "link set f-%s master %s up\n", h.Name, br)
	}
	rt.WriteString("EOF\n")
	if err := bsh(Control, "/sbin/ip -batch - <<'EOF'\n"+ctl.String()+"EOF"); err != nil {
		return err
	}
	if err := bsh("router", rt.String()); err != nil {
		return err
	}
	fleetBridges = true
	return nil
}

// fleetSetup configures one simulated realserver from inside its namespaces, as hostSetup does the
// lab's own hosts.
func fleetSetup(h Host) string {
	dir := filepath.Join(stateDir, h.Name)
	cfg := strings.ReplaceAll(sshdConfig(h), hostKeyDir(h.Name), dir)
	return fmt.Sprintf(`set -e
hostname %[1]s
mount --make-rprivate /
for d in /tmp /var/lib /var/log /run /etc/sysctl.d /root; do mount -t tmpfs -o mode=0755 tmpfs $d; done
chmod 1777 /tmp; chmod 0700 /root
mkdir -p /run/sshd
%[2]s/sbin/ip -batch - <<'EOF'
link set lo up
addr add %[3]s/24 dev mgmt0
link set mgmt0 up
addr add %[4]s/24 dev eth0
link set eth0 up
route add default via %[5]s
EOF
cat > %[6]s/sshd_config <<'EOF'
%[7]sEOF
/usr/sbin/sshd -f %[6]s/sshd_config
`, h.Name, sysctlDefaults(h.Name), h.Mgmt, h.Data, gateway[h.Name], dir, cfg)
}

// waitListen waits until every host's sshd listens.
func waitListen(hs []Host) error {
	deadline := time.Now().Add(60 * time.Second)
	for _, h := range hs {
		addr := net.JoinHostPort(h.Mgmt, "22")
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("lab: no sshd on %s: %w", addr, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// parallelHosts runs f for every host, at most workers at once, and returns the first error.
func parallelHosts(hs []Host, workers int, f func(Host) error) error {
	errs := make([]error, len(hs))
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for i, h := range hs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = f(h)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
