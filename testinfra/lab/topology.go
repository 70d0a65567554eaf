package lab

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The lab's addresses, all in 198.18.0.0/15 and 2001:2::/48. Data networks: the LAN of the director, the client and
// the VIP (like the write-up's 192.168.48.0/24) and two realserver regions; management: SSH only.
const (
	VIP       = "198.18.48.180"
	LANPrefix = "198.18.48.0/24"
	Region1   = "198.18.1.0/24"
	Region2   = "198.18.10.0/24"

	RouterLAN     = "198.18.48.254"
	RouterRegion1 = "198.18.1.254"
	RouterRegion2 = "198.18.10.254"
	DirectorIP    = "198.18.48.181"
	ClientIP      = "198.18.48.100"
	RS1IP         = "198.18.1.183"
	RS2IP         = "198.18.10.182"

	// IPv6, in 2001:2::/48: one /64 per data network, each host's address ending as its IPv4 one.
	// The IPv6 VIPs are routed to the director by the router: a VIP on the director's ip6tnl0 is not
	// on the LAN's link (Linux answers neighbour solicitations only for the receiving device's
	// addresses).
	VIP6           = "2001:2:0:ff::180"
	VIP6Prefix     = "2001:2:0:ff::/64"
	RouterLAN6     = "2001:2:0:48::254"
	RouterRegion16 = "2001:2:0:1::254"
	RouterRegion26 = "2001:2:0:10::254"
	DirectorIP6    = "2001:2:0:48::181"
	ClientIP6      = "2001:2:0:48::100"
	RS1IP6         = "2001:2:0:1::183"
	RS2IP6         = "2001:2:0:10::182"

	MgmtPrefix   = "198.19.0.0/24"
	ControlMgmt  = "198.19.0.1"
	RouterMgmt   = "198.19.0.2"
	DirectorMgmt = "198.19.0.11"
	ClientMgmt   = "198.19.0.12"
	RS1Mgmt      = "198.19.0.21"
	RS2Mgmt      = "198.19.0.22"

	// Control names the VM's own namespace in Exec and Sh: the management bridge, tests, tunplan.
	Control = "control"

	stateDir = "/lab" // inside the VM: per-host configs, on the VM's tmpfs
)

// Host is one lab machine.
type Host struct {
	Name  string
	Mgmt  string // SSH address on the management network
	Data  string // address on its data network (the router's LAN address for the router)
	Data6 string // its IPv6 address there
}

var hosts = []Host{
	{"router", RouterMgmt, RouterLAN, RouterLAN6},
	{"director", DirectorMgmt, DirectorIP, DirectorIP6},
	{"client", ClientMgmt, ClientIP, ClientIP6},
	{"rs1", RS1Mgmt, RS1IP, RS1IP6},
	{"rs2", RS2Mgmt, RS2IP, RS2IP6},
}

// gateway and gateway6 are each data host's default routes; the router owns the three data
// networks.
var (
	gateway  = map[string]string{"director": RouterLAN, "client": RouterLAN, "rs1": RouterRegion1, "rs2": RouterRegion2}
	gateway6 = map[string]string{"director": RouterLAN6, "client": RouterLAN6, "rs1": RouterRegion16, "rs2": RouterRegion26}
)

// Hosts lists the lab's machines.
func Hosts() []Host { return append([]Host(nil), hosts...) }

// procs holds the process that keeps each host's namespaces alive.
var procs = map[string]*exec.Cmd{}

// build makes the topology inside the VM. Each host is a long-lived process in its own network, mount
// and UTS namespace, with private /tmp, /var/lib, /var/log, /run, /etc/sysctl.d, /etc/systemd/system,
// /etc/modules-load.d and an empty /root
// (not the machine's, whose shell start-up files may be slow or surprising). Under emulation every
// exec of a dynamically linked program costs a lot, so the set-up runs in busybox (static, applets
// without exec) and iproute2 in batch mode.
func build() error {
	start := time.Now()
	if _, err := os.Stat(SSHKey()); err != nil {
		return fmt.Errorf("lab: no SSH keys in the run directory (is this running under lab.Run?): %w", err)
	}
	for _, h := range hosts {
		if err := spawn(h); err != nil {
			return err
		}
	}
	if err := bsh(Control, "/sbin/modprobe -a veth bridge && /sbin/ip -batch - <<'EOF'\n"+wiring()+"EOF"); err != nil {
		return err
	}
	if err := parallel(func(h Host) error { return bsh(h.Name, hostSetup(h)) }); err != nil {
		return err
	}
	if err := waitSSH(); err != nil {
		return err
	}
	fmt.Printf("lab: topology up in %.1fs\n", time.Since(start).Seconds())
	return nil
}

// spawn starts the process that holds a host's namespaces.
func spawn(h Host) error {
	cmd := exec.Command("sleep", "infinity")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("lab: start %s: %w", h.Name, err)
	}
	procs[h.Name] = cmd
	return nil
}

// wiring is the ip batch, run in the control namespace, that creates the management bridge and
// every link: a veth per host into the management bridge, the director's and the client's LAN links
// to the router, and one link per region.
func wiring() string {
	var b strings.Builder
	ns := func(h string) int { return procs[h].Process.Pid }
	fmt.Fprintf(&b, "link add mgmt0 type bridge\naddr add %s/24 dev mgmt0\nlink set mgmt0 up\n", ControlMgmt)
	for _, h := range hosts {
		fmt.Fprintf(&b, "link add m-%s type veth peer name mgmt0 netns %d\nlink set m-%s master mgmt0 up\n", h.Name, ns(h.Name), h.Name)
	}
	for _, h := range []string{"director", "client"} {
		fmt.Fprintf(&b, "link add l-%s netns %d type veth peer name eth0 netns %d\n", h, ns("router"), ns(h))
	}
	for i, h := range []string{"rs1", "rs2"} {
		fmt.Fprintf(&b, "link add eth%d netns %d type veth peer name eth0 netns %d\n", i+1, ns("router"), ns(h))
	}
	return b.String()
}

// hostSetup configures one host from inside its namespaces (busybox sh): private directories, stock
// sysctls, addresses and routes, sshd, and nginx on the realservers. The router forwards nothing from
// or to the management network.
func hostSetup(h Host) string {
	var b strings.Builder
	fmt.Fprintf(&b, `set -e
hostname %s
mount --make-rprivate /
for d in /tmp /var/lib /var/log /run /etc/sysctl.d /etc/systemd/system /etc/modules-load.d /root; do mount -t tmpfs -o mode=0755 tmpfs $d; done
chmod 1777 /tmp; chmod 0700 /root
mkdir -p /run/sshd /var/lib/nginx /var/log/nginx
`, h.Name)
	b.WriteString(sysctlDefaults(h.Name))
	b.WriteString("/sbin/ip -batch - <<'EOF'\nlink set lo up\n")
	fmt.Fprintf(&b, "addr add %s/24 dev mgmt0\nlink set mgmt0 up\n", h.Mgmt)
	if h.Name == "router" {
		fmt.Fprintf(&b, `link add lan0 type bridge
addr add %s/24 dev lan0
link set lan0 up
link set l-director master lan0 up
link set l-client master lan0 up
addr add %s/64 dev lan0 nodad
addr add %s/24 dev eth1
addr add %s/64 dev eth1 nodad
link set eth1 up
addr add %s/24 dev eth2
addr add %s/64 dev eth2 nodad
link set eth2 up
route add %s via %s
rule add pref 100 iif mgmt0 prohibit
`, RouterLAN, RouterLAN6, RouterRegion1, RouterRegion16, RouterRegion2, RouterRegion26, VIP6Prefix, DirectorIP6)
		for _, l := range []string{"lan0", "eth1", "eth2"} {
			fmt.Fprintf(&b, "rule add pref 101 iif %s to %s prohibit\n", l, MgmtPrefix)
		}
	} else {
		fmt.Fprintf(&b, "addr add %s/24 dev eth0\naddr add %s/64 dev eth0 nodad\nlink set eth0 up\nroute add default via %s\nroute add default via %s\n",
			h.Data, h.Data6, gateway[h.Name], gateway6[h.Name])
	}
	b.WriteString("EOF\n")
	dir := filepath.Join(stateDir, h.Name)
	fmt.Fprintf(&b, "mkdir -p %[1]s\ncat > %[1]s/sshd_config <<'EOF'\n%[2]sEOF\n/usr/sbin/sshd -f %[1]s/sshd_config\n", dir, sshdConfig(h))
	if strings.HasPrefix(h.Name, "rs") {
		fmt.Fprintf(&b, "cat > %[1]s/nginx.conf <<'EOF'\n%[2]sEOF\n/usr/sbin/nginx -e /var/log/nginx/error.log -c %[1]s/nginx.conf\n", dir, nginxConfig(h.Name))
	}
	return b.String()
}

// sysctlDefaults are a stock host's: reverse-path filtering on, no forwarding; the router forwards
// IPv4 and IPv6 between the data networks without reverse-path checks. Reset restores them.
func sysctlDefaults(host string) string {
	fwd, rp := 0, 1
	if host == "router" {
		fwd, rp = 1, 0
	}
	return fmt.Sprintf(`echo %[1]d > /proc/sys/net/ipv4/ip_forward
echo %[1]d > /proc/sys/net/ipv6/conf/all/forwarding
for c in /proc/sys/net/ipv4/conf/*; do echo %[2]d > $c/rp_filter; echo 0 > $c/arp_ignore; echo 0 > $c/arp_announce; echo 0 > $c/accept_local; done
`, fwd, rp)
}

func sshdConfig(h Host) string {
	return fmt.Sprintf(`ListenAddress %[1]s
HostKey %[2]s/ssh_host_ed25519_key
AuthorizedKeysFile %[2]s/authorized_keys
PidFile /run/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PrintMotd no
PrintLastLog no
MaxSessions 64
MaxStartups 100
Subsystem sftp internal-sftp
`, h.Mgmt, hostKeyDir(h.Name))
}

func nginxConfig(name string) string {
	return fmt.Sprintf(`daemon on;
pid /run/nginx.pid;
error_log /var/log/nginx/error.log;
events { worker_connections 256; }
http {
  access_log off;
  server {
    listen 0.0.0.0:80;
    listen [::]:80;
    listen 0.0.0.0:443;
    default_type text/plain;
    location / { return 200 "%s\n"; }
  }
}
`, name)
}

// waitSSH waits until every sshd listens (sshd daemonises before it listens).
func waitSSH() error {
	for _, h := range hosts {
		addr := net.JoinHostPort(h.Mgmt, "22")
		for try := 0; ; try++ {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if try == 100 {
				return fmt.Errorf("lab: no sshd on %s: %w", addr, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// parallel runs f for every host at once and returns the first error.
func parallel(f func(Host) error) error { return parallelHosts(hosts, len(hosts), f) }

// teardown stops every process in every host's namespaces and removes the management bridge.
func teardown() error {
	for name, cmd := range procs {
		ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid))
		if err != nil {
			return fmt.Errorf("lab: teardown %s: %w", name, err)
		}
		if err := killNamespace(ns); err != nil {
			return fmt.Errorf("lab: teardown %s: %w", name, err)
		}
		cmd.Wait()
		delete(procs, name)
	}
	return bsh(Control, "/sbin/ip link del mgmt0")
}

// killNamespace kills every process whose network namespace is ns until none is left.
func killNamespace(ns string) error {
	for try := 0; try < 50; try++ {
		left := 0
		entries, err := os.ReadDir("/proc")
		if err != nil {
			return err
		}
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid)); l == ns {
				if p, err := os.FindProcess(pid); err == nil && p.Kill() == nil {
					left++
				}
			}
		}
		if left == 0 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("processes in %s survive SIGKILL", ns)
}
