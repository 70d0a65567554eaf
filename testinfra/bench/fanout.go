package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/tunplan/tunplan/testinfra/lab"
)

// The fan-out benchmark: the two-region plan scaled to N simulated realservers (namespaces with
// their own sshd, lab.AddRealservers) plus the lab's director, applied by tunplan from scratch and
// again with nothing to do, against Ansible running the manual's original shell steps
// (testinfra/scripts) on the same hosts with the same parallelism, first and second run.

// fanoutParallel is tunplan's --parallel and ansible-playbook's -f.
const fanoutParallel = 16

var fanoutSizes = []int{8, 32, 64}

// uploadRE reads the line tunplan prints when it sent its helper.
var uploadRE = regexp.MustCompile(`Uploaded the helper to (\d+) hosts?: (\d+) bytes`)

// fanoutResult is one run at one size.
type fanoutResult struct {
	apply, noop, ansible, ansibleNoop float64
	uploadFirst, uploadSecond         float64 // bytes per host that received the helper
}

func benchFanout(b *Bench) error {
	bin := os.Getenv("TUNPLAN_BIN")
	if bin == "" {
		return fmt.Errorf("TUNPLAN_BIN is not set")
	}
	helper, err := os.Stat(os.Getenv("TUNPLAN_HELPER")) // built as `make helper` builds the embedded one
	if err != nil {
		return err
	}
	max := fanoutSizes[len(fanoutSizes)-1]
	fleet, err := lab.AddRealservers(max)
	if err != nil {
		return err
	}
	defer lab.RemoveRealservers()
	dir := filepath.Join(lab.RunDir(), "fanout")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var last fanoutResult
	for _, n := range fanoutSizes {
		runs := 1
		if n == max {
			runs = b.Runs
		}
		plan, inv := filepath.Join(dir, fmt.Sprintf("plan-%d.hcl", n)), filepath.Join(dir, fmt.Sprintf("hosts-%d.ini", n))
		if err := os.WriteFile(plan, []byte(fanoutPlan(fleet[:n])), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(inv, []byte(fanoutInventory(fleet[:n])), 0o644); err != nil {
			return err
		}
		var rs []fanoutResult
		for run := 0; run < runs; run++ {
			r, err := fanoutRun(bin, plan, inv, fleet[:n], fmt.Sprintf("/tmp/tunplan-bench-ansible-%d-%d", n, run))
			if err != nil {
				return fmt.Errorf("%d hosts: %w", n, err)
			}
			fmt.Printf("bench:   %d hosts, run %d: tunplan %.1fs / noop %.1fs; ansible %.1fs / second run %.1fs\n", n, run+1, r.apply, r.noop, r.ansible, r.ansibleNoop)
			rs = append(rs, r)
		}
		med := func(get func(fanoutResult) float64) float64 {
			var xs []float64
			for _, r := range rs {
				xs = append(xs, get(r))
			}
			return middle(xs)
		}
		m := fanoutResult{
			apply: med(func(r fanoutResult) float64 { return r.apply }), noop: med(func(r fanoutResult) float64 { return r.noop }),
			ansible: med(func(r fanoutResult) float64 { return r.ansible }), ansibleNoop: med(func(r fanoutResult) float64 { return r.ansibleNoop }),
		}
		b.set(fmt.Sprintf("fanout%d_apply_s", n), m.apply)
		b.set(fmt.Sprintf("ansible%d_apply_s", n), m.ansible)
		b.set(fmt.Sprintf("fanout%d_noop_s", n), m.noop)
		b.set(fmt.Sprintf("ansible%d_noop_s", n), m.ansibleNoop)
		how := fmt.Sprintf("median of %d runs", runs)
		if runs == 1 {
			how = "1 run"
		}
		peer := fmt.Sprintf("Ansible (script, -f %d)", fanoutParallel)
		b.row(Row{What: fmt.Sprintf("apply to %d realservers + director from scratch (--parallel %d; %s)", n, fanoutParallel, how),
			Unit: "s", Tunplan: m.apply, Peer: peer, PeerValue: m.ansible, Target: "≤ 0.2×"})
		b.row(Row{What: fmt.Sprintf("no-op apply to %d realservers + director (--parallel %d; %s; Ansible: second run)", n, fanoutParallel, how),
			Unit: "s", Tunplan: m.noop, Peer: peer, PeerValue: m.ansibleNoop, Target: "≤ 0.2×"})
		last = rs[0]
	}
	b.set("helper_bytes", float64(helper.Size()))
	b.set("first_apply_upload_bytes", last.uploadFirst)
	b.set("second_apply_upload_bytes", last.uploadSecond)
	b.row(Row{What: "helper binary (linux/amd64, static, stripped)", Unit: "bytes", Tunplan: float64(helper.Size()), Target: "< 4 MB"})
	b.row(Row{What: "helper bytes uploaded per host, first apply (gzip; unpacked on the host)", Unit: "bytes", Tunplan: last.uploadFirst, Target: "< 4 MB once"})
	b.row(Row{What: "helper bytes uploaded per host, second apply", Unit: "bytes", Tunplan: last.uploadSecond, Target: "0 on later applies"})
	return nil
}

// fanoutRun resets the hosts, times tunplan's first and second apply, resets again and times
// Ansible's first and second run; each first run is checked to have configured the hosts.
func fanoutRun(bin, plan, inv string, fleet []lab.Host, cpDir string) (fanoutResult, error) {
	var r fanoutResult
	if err := resetAll(); err != nil {
		return r, err
	}
	var out string
	var err error
	r.apply, err = seconds(func() error {
		out, err = run(bin, "apply", "-f", plan, "--auto-approve", "--parallel", strconv.Itoa(fanoutParallel))
		return err
	})
	if err != nil {
		return r, fmt.Errorf("tunplan apply: %w\n%s", err, out)
	}
	m := uploadRE.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("tunplan apply from scratch did not report a helper upload:\n%s", out)
	}
	hosts, _ := strconv.Atoi(m[1])
	total, _ := strconv.ParseFloat(m[2], 64)
	if hosts != len(fleet)+1 {
		return r, fmt.Errorf("tunplan uploaded the helper to %d hosts, want %d:\n%s", hosts, len(fleet)+1, out)
	}
	r.uploadFirst = total / float64(hosts)
	if err := checkConfigured(fleet); err != nil {
		return r, fmt.Errorf("after tunplan apply: %w", err)
	}
	fmt.Printf("bench:     tunplan apply from scratch: %.1fs\n", r.apply)
	r.noop, err = seconds(func() error {
		out, err = run(bin, "apply", "-f", plan, "--auto-approve", "--parallel", strconv.Itoa(fanoutParallel))
		return err
	})
	if err != nil {
		return r, fmt.Errorf("tunplan apply (no-op): %w\n%s", err, out)
	}
	if !strings.Contains(out, "No changes.") {
		return r, fmt.Errorf("the second tunplan apply was not a no-op:\n%s", out)
	}
	if m := uploadRE.FindStringSubmatch(out); m != nil {
		total, _ := strconv.ParseFloat(m[2], 64)
		hosts, _ := strconv.Atoi(m[1])
		r.uploadSecond = total / float64(hosts)
	}

	if err := resetAll(); err != nil {
		return r, err
	}
	ansible := func(rerun bool) (float64, error) {
		return seconds(func() error {
			cmd := exec.Command("ansible-playbook", "-i", inv, "-f", strconv.Itoa(fanoutParallel),
				"-e", "rerun="+strconv.FormatBool(rerun), filepath.Join("testinfra", "bench", "ansible", "playbook.yml"))
			cmd.Env = append(os.Environ(), "ANSIBLE_CONFIG="+filepath.Join("testinfra", "bench", "ansible", "ansible.cfg"),
				"ANSIBLE_SSH_CONTROL_PATH_DIR="+cpDir, "ANSIBLE_NOCOLOR=1", "ANSIBLE_LOCAL_TEMP="+cpDir+"-tmp")
			b, err := cmd.CombinedOutput()
			out = string(b)
			return err
		})
	}
	if r.ansible, err = ansible(false); err != nil {
		return r, fmt.Errorf("ansible-playbook: %w\n%s", err, out)
	}
	fmt.Printf("bench:     ansible-playbook first run: %.1fs\n", r.ansible)
	if err := checkConfigured(fleet); err != nil {
		return r, fmt.Errorf("after ansible-playbook: %w", err)
	}
	if r.ansibleNoop, err = ansible(true); err != nil {
		return r, fmt.Errorf("ansible-playbook (second run): %w\n%s", err, out)
	}
	return r, nil
}

// checkConfigured checks that the director tunnels to every realserver and that a sample of the
// realservers carry the VIP on tunl0: the timings are of real work.
func checkConfigured(fleet []lab.Host) error {
	out, err := lab.Exec("director", "/sbin/ipvsadm", "-Ln")
	if err != nil {
		return fmt.Errorf("director: ipvsadm: %w\n%s", err, out)
	}
	if got := strings.Count(out, "Tunnel"); got != len(fleet) {
		return fmt.Errorf("director: %d tunnel destinations, want %d:\n%s", got, len(fleet), out)
	}
	for _, h := range []lab.Host{fleet[0], fleet[len(fleet)/2], fleet[len(fleet)-1]} {
		out, err := lab.Exec(h.Name, "/sbin/ip", "-4", "-o", "addr", "show", "dev", "tunl0")
		if err != nil || !strings.Contains(out, lab.VIP+"/32") {
			return fmt.Errorf("%s: the VIP is not on tunl0 (%v):\n%s", h.Name, err, out)
		}
	}
	return nil
}

// resetAll returns the simulated realservers and the lab to a clean kernel: no helper, no tunl0
// addresses, stock sysctls, ipip and IPVS unloaded.
func resetAll() error {
	if err := lab.ResetRealservers(); err != nil {
		return err
	}
	return lab.Reset()
}

func run(argv ...string) (string, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// regionOf names a simulated realserver's region as the two-region example does.
func regionOf(h lab.Host) string {
	if strings.HasPrefix(h.Data, "198.18.2.") {
		return "shanghai"
	}
	return "beijing"
}

// fanoutPlan is the two-region example scaled to the given realservers: the lab's director, the
// realservers split over two regions, one round-robin service on port 80 over all of them.
func fanoutPlan(fleet []lab.Host) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# The two-region plan scaled to %d realservers (testinfra/bench/fanout.go).
ssh {
  user          = "root"
  port          = 22
  identity_file = %q
  known_hosts   = %q
}

host "lvs01" {
  role    = "director"
  address = %q
  ssh { host = %q }
}
`, len(fleet), lab.SSHKey(), lab.KnownHosts(), lab.DirectorIP, lab.DirectorMgmt)
	var members strings.Builder
	for _, h := range fleet {
		name := regionOf(h) + "-" + strings.TrimPrefix(h.Name, "fleet")
		fmt.Fprintf(&b, "\nhost %q {\n  role    = \"realserver\"\n  address = %q\n  ssh { host = %q }\n}\n", name, h.Data, h.Mgmt)
		fmt.Fprintf(&members, "\n  realserver %q {\n    weight = 1\n  }\n", name)
	}
	fmt.Fprintf(&b, `
virtual_service "web" {
  vip       = %q
  protocol  = "tcp"
  port      = 80
  scheduler = "rr"
  directors = ["lvs01"]
%s}
`, lab.VIP, members.String())
	return b.String()
}

// fanoutInventory is Ansible's inventory of the same hosts, with the lab's key and known_hosts.
func fanoutInventory(fleet []lab.Host) string {
	var b, rips strings.Builder
	fmt.Fprintf(&b, "[director]\nlvs01 ansible_host=%s\n\n[realservers]\n", lab.DirectorMgmt)
	for i, h := range fleet {
		fmt.Fprintf(&b, "%s ansible_host=%s\n", h.Name, h.Mgmt)
		if i > 0 {
			rips.WriteString(" ")
		}
		rips.WriteString(h.Data)
	}
	scripts, _ := filepath.Abs(filepath.Join("testinfra", "scripts"))
	fmt.Fprintf(&b, `
[all:vars]
ansible_user=root
ansible_ssh_private_key_file=%s
ansible_ssh_common_args='-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes'
vip=%s
rips=%s
scripts=%s
`, lab.SSHKey(), lab.KnownHosts(), lab.VIP, rips.String(), scripts)
	return b.String()
}
