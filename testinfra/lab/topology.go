package lab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The lab's addresses, all in 198.18.0.0/15. Data networks: the LAN of the director, the client and
// the VIP (like the write-up's 192.168.48.0/24) and two realserver regions; management: SSH only.
const (
	VIP         = "198.18.48.180"
	LANPrefix   = "198.18.48.0/24"
	Region1     = "198.18.1.0/24"
	Region2     = "198.18.10.0/24"
	ControlMgmt = "198.19.0.1"
	mgmtBits    = "/24"
	stateDir    = "/lab" // inside the VM: keys, configs, known_hosts
)

// Host is one lab machine.
type Host struct {
	Name string
	Mgmt string // SSH address on the management network
	Data string // address on its data network
}

var hosts = []Host{
	{"router", "198.19.0.2", "198.18.48.254"},
	{"director", "198.19.0.11", "198.18.48.181"},
	{"client", "198.19.0.12", "198.18.48.100"},
	{"rs1", "198.19.0.21", "198.18.1.183"},
	{"rs2", "198.19.0.22", "198.18.10.182"},
}

// Hosts lists the lab's machines.
func Hosts() []Host { return append([]Host(nil), hosts...) }

// pids holds the process that keeps each host's namespaces alive.
var pids = map[string]int{}

// build makes the topology inside the VM. Each host is a long-lived process in its own network, mount
// and UTS namespace, with private /tmp, /var/lib, /var/log, /run and /etc/sysctl.d.
func build() error {
	start := time.Now()
	for _, m := range []string{"veth", "bridge"} {
		if out, err := exec.Command("modprobe", m).CombinedOutput(); err != nil {
			return fmt.Errorf("modprobe %s: %v: %s", m, err, out)
		}
	}
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return err
	}
	if err := sh("control", `ssh-keygen -q -t ed25519 -N "" -f `+SSHKey()+` && : > `+KnownHosts()+`
		ip link add mgmt0 type bridge && ip addr add `+ControlMgmt+mgmtBits+` dev mgmt0 && ip link set mgmt0 up`); err != nil {
		return err
	}
	for _, h := range hosts {
		if err := spawn(h); err != nil {
			return err
		}
	}
	for _, step := range []func() error{wireMgmt, wireData, startSSH, startNginx} {
		if err := step(); err != nil {
			return err
		}
	}
	fmt.Printf("lab: topology up in %.1fs\n", time.Since(start).Seconds())
	return nil
}

func spawn(h Host) error {
	dir := filepath.Join(stateDir, h.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	setup := `hostname ` + h.Name + `
		mkdir -p /etc/sysctl.d
		for d in /tmp /var/lib /var/log /run /etc/sysctl.d; do mount -t tmpfs -o mode=0755 tmpfs $d; done
		chmod 1777 /tmp; mkdir -p /run/sshd /var/lib/nginx /var/log/nginx
		echo 0 > /proc/sys/net/ipv4/ip_forward
		for k in all default; do echo 1 > /proc/sys/net/ipv4/conf/$k/rp_filter; done
		ip link set lo up
		exec sleep infinity`
	cmd := exec.Command("unshare", "--net", "--mount", "--uts", "--propagation", "private", "sh", "-c", setup)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("lab: start %s: %w", h.Name, err)
	}
	pids[h.Name] = cmd.Process.Pid
	// Wait until the namespace is set up (the sleep has replaced the shell).
	for i := 0; i < 200; i++ {
		if comm, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/comm"); strings.TrimSpace(string(comm)) == "sleep" {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("lab: host %s did not come up", h.Name)
}

// veth links host a's interface an to host b's interface bn ("control" is the VM's own namespace).
func veth(a, an, b, bn string) error {
	return sh("control", fmt.Sprintf("ip link add %s %s type veth peer name %s %s", an, netnsArg(a), bn, netnsArg(b)))
}

func netnsArg(h string) string {
	if h == "control" {
		return ""
	}
	return "netns " + strconv.Itoa(pids[h])
}

func wireMgmt() error {
	for _, h := range hosts {
		if err := veth("control", "m-"+h.Name, h.Name, "mgmt0"); err != nil {
			return err
		}
		if err := sh("control", "ip link set m-"+h.Name+" master mgmt0 up"); err != nil {
			return err
		}
		if err := sh(h.Name, "ip addr add "+h.Mgmt+mgmtBits+" dev mgmt0 && ip link set mgmt0 up"); err != nil {
			return err
		}
	}
	return nil
}

func wireData() error {
	router := `echo 1 > /proc/sys/net/ipv4/ip_forward
		for k in all default; do echo 0 > /proc/sys/net/ipv4/conf/$k/rp_filter; done
		ip link add lan0 type bridge && ip addr add 198.18.48.254/24 dev lan0 && ip link set lan0 up`
	if err := sh("router", router); err != nil {
		return err
	}
	for _, h := range []string{"director", "client"} {
		if err := veth("router", "l-"+h, h, "eth0"); err != nil {
			return err
		}
		if err := sh("router", "ip link set l-"+h+" master lan0 up"); err != nil {
			return err
		}
	}
	for i, rs := range []string{"rs1", "rs2"} {
		if err := veth("router", fmt.Sprintf("eth%d", i+1), rs, "eth0"); err != nil {
			return err
		}
	}
	if err := sh("router", "ip addr add 198.18.1.254/24 dev eth1 && ip link set eth1 up && ip addr add 198.18.10.254/24 dev eth2 && ip link set eth2 up"); err != nil {
		return err
	}
	gw := map[string]string{"director": "198.18.48.254", "client": "198.18.48.254", "rs1": "198.18.1.254", "rs2": "198.18.10.254"}
	for _, h := range hosts[1:] {
		bits := "/24"
		if err := sh(h.Name, "ip addr add "+h.Data+bits+" dev eth0 && ip link set eth0 up && ip route add default via "+gw[h.Name]); err != nil {
			return err
		}
	}
	return nil
}

func startSSH() error {
	for _, h := range hosts {
		dir := filepath.Join(stateDir, h.Name)
		conf := fmt.Sprintf(`ListenAddress %s
HostKey %s/ssh_host_ed25519_key
AuthorizedKeysFile %s/authorized_keys
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
`, h.Mgmt, dir, dir)
		if err := os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(conf), 0o644); err != nil {
			return err
		}
		script := fmt.Sprintf(`ssh-keygen -q -t ed25519 -N "" -f %[1]s/ssh_host_ed25519_key
			cp %[2]s.pub %[1]s/authorized_keys
			echo "%[3]s $(cut -d' ' -f1,2 %[1]s/ssh_host_ed25519_key.pub)" >> %[4]s
			/usr/sbin/sshd -f %[1]s/sshd_config`, dir, SSHKey(), h.Mgmt, KnownHosts())
		if err := sh(h.Name, script); err != nil {
			return err
		}
	}
	// sshd daemonises before it listens: wait for every port.
	for _, h := range hosts {
		if err := sh("control", "for i in $(seq 100); do (exec 3<>/dev/tcp/"+h.Mgmt+"/22) 2>/dev/null && exit 0; sleep 0.1; done; echo no sshd on "+h.Mgmt+"; exit 1"); err != nil {
			return err
		}
	}
	return nil
}

func startNginx() error {
	for _, rs := range []string{"rs1", "rs2"} {
		conf := fmt.Sprintf(`daemon on;
pid /run/nginx.pid;
error_log /var/log/nginx/error.log;
events { worker_connections 256; }
http {
  access_log off;
  server {
    listen 80;
    default_type text/plain;
    location / { return 200 "%s\n"; }
  }
}
`, rs)
		path := filepath.Join(stateDir, rs, "nginx.conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			return err
		}
		if err := sh(rs, "nginx -e /var/log/nginx/error.log -c "+path); err != nil {
			return err
		}
	}
	return nil
}

// sh runs a setup script in a host, failing with its output.
func sh(host, script string) error {
	if out, err := Sh(host, script); err != nil {
		return fmt.Errorf("lab: %s: %v\n%s\n%s", host, err, script, out)
	}
	return nil
}
