// Package kernel tests tunplan's kernel writers directly against the lab's real kernel (Debian's,
// under qemu): what they make is read back with the distribution's own tools.
package kernel

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	cipvs "github.com/cloudflare/ipvs"

	"github.com/tunplan/tunplan/modules/ipvs"
	"github.com/tunplan/tunplan/modules/protocol"
	"github.com/tunplan/tunplan/testinfra/lab"
)

// TestMain boots the lab (lab.Main); in the director, where the tests run again, it only runs them.
func TestMain(m *testing.M) {
	if os.Getenv(inDirector) == "1" {
		os.Exit(m.Run())
	}
	lab.Main(m)
}

// The tests run in the director's network namespace: this test binary, started again there.
const inDirector = "TUNPLAN_KERNEL_IN_DIRECTOR"

// director runs the named test in the director and fails t with its output.
func director(t *testing.T, name string) {
	t.Helper()
	if os.Getenv(inDirector) == "1" {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The director has a private /tmp, where go test leaves its binary: copy it to the shared run dir.
	bin := lab.RunDir() + "/kernel.test"
	if _, err := os.Stat(bin); err != nil {
		b, err := os.ReadFile(exe)
		if err == nil {
			err = os.WriteFile(bin, b, 0o755)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	out, err := lab.Exec("director", "env", inDirector+"=1", bin, "-test.run", "^"+name+"$", "-test.v")
	t.Log(out)
	if err != nil || !strings.Contains(out, "--- PASS: "+name) {
		t.Fatalf("in the director: %v", err)
	}
}

// inside reports whether the test body should run: only in the director.
func inside(t *testing.T) bool {
	director(t, t.Name())
	return os.Getenv(inDirector) == "1"
}

func sh(t *testing.T, script string) string {
	t.Helper()
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return string(out)
}

func service(i int) protocol.Service {
	return protocol.Service{Protocol: "tcp", Address: netip.AddrFrom4([4]byte{198, 18, 100, byte(i / 100)}), Port: uint16(10000 + i%100), Scheduler: "rr"}
}

// dest is a destination of a service on port: ipvsadm gives tunnel destinations their service's port.
func dest(j int, port uint16) protocol.Destination {
	return protocol.Destination{Address: netip.AddrFrom4([4]byte{198, 18, 200, byte(1 + j)}), Port: port, Weight: uint32(1 + j%3), Forward: "tunnel"}
}

func open(t *testing.T) *ipvs.Client {
	sh(t, "modprobe ip_vs; modprobe ip_vs_rr; modprobe ip_vs_wlc; ipvsadm -C")
	k, err := ipvs.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		k.Close()
		sh(t, "ipvsadm -C")
	})
	return k
}

// apply runs Diff's steps as the engine does: Do each, Flush at the end.
func apply(t *testing.T, k ipvs.Kernel, want, cur []protocol.Service) error {
	steps := ipvs.Diff(func() (ipvs.Kernel, error) { return k, nil }, want, cur)
	for _, s := range steps {
		if err := s.Do(); err != nil {
			return err
		}
	}
	if len(steps) == 0 {
		return nil
	}
	return steps[len(steps)-1].Flush()
}

func savedRules(t *testing.T) []string {
	lines := strings.Split(strings.TrimSpace(sh(t, "ipvsadm -Sn")), "\n")
	sort.Strings(lines)
	return lines
}

// TestLoad10k: 1,000 services × 10 tunnel destinations in batches; ipvsadm reads back exactly
// what ipvsadm-restore of the same rules makes, and Facts reads back what was wanted.
func TestLoad10k(t *testing.T) {
	if !inside(t) {
		return
	}
	k := open(t)
	var want []protocol.Service
	var rules strings.Builder
	for i := 0; i < 1000; i++ {
		s := service(i)
		vs := netip.AddrPortFrom(s.Address, s.Port)
		fmt.Fprintf(&rules, "-A -t %s -s rr\n", vs)
		for j := 0; j < 10; j++ {
			d := dest(j, s.Port)
			s.Destinations = append(s.Destinations, d)
			fmt.Fprintf(&rules, "-a -t %s -r %s -i -w %d\n", vs, netip.AddrPortFrom(d.Address, d.Port), d.Weight)
		}
		want = append(want, s)
	}
	start := time.Now()
	if err := apply(t, k, want, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("loaded 1,000 services × 10 destinations in %v", time.Since(start))
	got := savedRules(t)
	sh(t, "ipvsadm -C")
	restore := exec.Command("ipvsadm-restore")
	restore.Stdin = strings.NewReader(rules.String())
	if out, err := restore.CombinedOutput(); err != nil {
		t.Fatalf("ipvsadm-restore: %v\n%s", err, out)
	}
	ref := savedRules(t)
	if len(got) != 11000 || strings.Join(got, "\n") != strings.Join(ref, "\n") {
		t.Fatalf("ipvsadm -Sn after the batched load (%d lines) differs from after ipvsadm-restore (%d lines)", len(got), len(ref))
	}
	start = time.Now()
	facts, err := ipvs.Facts(k, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("read them back in %v", time.Since(start))
	start = time.Now()
	proc, err := os.ReadFile("/proc/net/ip_vs")
	t.Logf("/proc/net/ip_vs: %d bytes in %v (%v)", len(proc), time.Since(start), err)
	sort.Slice(want, func(i, j int) bool { return want[i].Key().String() < want[j].Key().String() })
	if fmt.Sprint(facts) != fmt.Sprint(want) {
		t.Errorf("Facts reads back something else than was loaded")
	}
	// Facts read the destinations of so many services from /proc/net/ip_vs; fewer are dumped over
	// netlink: both give the same.
	var ks []cipvs.Service
	for _, s := range facts {
		ks = append(ks, ipvs.ToKernel(s))
	}
	for i := 0; i < len(ks); i += 20 {
		chunk := ks[i:min(i+20, len(ks))]
		dss, err := k.Destinations(chunk, false)
		if err != nil {
			t.Fatal(err)
		}
		for j, ds := range dss {
			var got []protocol.Destination
			for _, d := range ds {
				got = append(got, protocol.Destination{Address: d.Address, Port: d.Port, Weight: d.Weight, Forward: map[cipvs.ForwardType]string{cipvs.Tunnel: "tunnel"}[d.FwdMethod]})
			}
			sort.Slice(got, func(a, b int) bool { return got[a].Address.Less(got[b].Address) })
			if fmt.Sprint(got) != fmt.Sprint(facts[i+j].Destinations) {
				t.Fatalf("%s: netlink %v, Facts %v", facts[i+j].Key(), got, facts[i+j].Destinations)
			}
		}
	}
	// Nothing to do on the loaded table; one weight change is one write.
	if steps := ipvs.Diff(nil, want, facts); len(steps) != 0 {
		t.Errorf("%d steps on the loaded table", len(steps))
	}
	want[500].Destinations[3].Weight = 9
	steps := ipvs.Diff(nil, want, facts)
	if len(steps) != 1 || steps[0].Action != '~' {
		t.Fatalf("%v", steps)
	}
	if err := apply(t, k, want, facts); err != nil {
		t.Fatal(err)
	}
	vs := netip.AddrPortFrom(want[500].Address, want[500].Port)
	changed := fmt.Sprintf("-a -t %s -r 198.18.200.4:%d -i -w 9", vs, vs.Port())
	if !slices.ContainsFunc(savedRules(t), func(l string) bool { return strings.HasPrefix(l, changed) }) {
		t.Errorf("no %q after the weight change", changed)
	}
	// Removing everything: service deletes take their destinations along.
	if err := apply(t, k, nil, want); err != nil {
		t.Fatal(err)
	}
	if out := strings.TrimSpace(sh(t, "ipvsadm -Sn")); out != "" {
		t.Errorf("left after removing everything:\n%s", out)
	}
}

// TestAsCloudflare: what the batched writer makes is what cloudflare/ipvs's one-request-at-a-time
// client makes, for the kinds of services and destinations tunplan writes.
func TestAsCloudflare(t *testing.T) {
	if !inside(t) {
		return
	}
	k := open(t)
	c, err := cipvs.New()
	if err != nil {
		t.Fatal(err)
	}
	mk := func(vip string) []protocol.Service {
		a := netip.MustParseAddr(vip)
		return []protocol.Service{
			{Protocol: "tcp", Address: a, Port: 80, Scheduler: "rr", Destinations: []protocol.Destination{
				{Address: netip.MustParseAddr("198.18.1.183"), Port: 80, Weight: 1, Forward: "tunnel"},
				{Address: netip.MustParseAddr("198.18.10.182"), Port: 8080, Weight: 0, Forward: "tunnel"},
			}},
			{Protocol: "udp", Address: a, Port: 53, Scheduler: "wlc", Persistence: 300, Destinations: []protocol.Destination{
				{Address: netip.MustParseAddr("198.18.1.183"), Port: 53, Weight: 65535, Forward: "tunnel"},
			}},
		}
	}
	if err := apply(t, k, mk("198.18.48.180"), nil); err != nil {
		t.Fatal(err)
	}
	for _, s := range mk("198.18.48.181") {
		ks := ipvs.ToKernel(s)
		if err := c.CreateService(ks); err != nil {
			t.Fatal(err)
		}
		for _, d := range s.Destinations {
			if err := c.CreateDestination(ks, ipvs.DestToKernel(d)); err != nil {
				t.Fatal(err)
			}
		}
	}
	var ours, theirs []string
	for _, l := range savedRules(t) {
		switch {
		case strings.Contains(l, "198.18.48.180:"):
			ours = append(ours, strings.ReplaceAll(l, "198.18.48.180:", "VIP:"))
		case strings.Contains(l, "198.18.48.181:"):
			theirs = append(theirs, strings.ReplaceAll(l, "198.18.48.181:", "VIP:"))
		}
	}
	if len(ours) != 5 || strings.Join(ours, "\n") != strings.Join(theirs, "\n") {
		t.Errorf("batched writer:\n%s\ncloudflare/ipvs:\n%s", strings.Join(ours, "\n"), strings.Join(theirs, "\n"))
	}
}

// TestFailureInBatch: one failing request in the middle of a batch is reported by Flush naming
// its object; the kernel went on with the rest of the batch; the client works after it. A batch
// whose every request fails still ends with the right error (no answer lost).
func TestFailureInBatch(t *testing.T) {
	if !inside(t) {
		return
	}
	k := open(t)
	var first []protocol.Service
	for i := 0; i < 300; i++ {
		first = append(first, service(i))
	}
	if err := apply(t, k, first, nil); err != nil {
		t.Fatal(err)
	}
	// 300 new services, then one that exists, then 300 more, in one batch.
	var second []protocol.Service
	for i := 300; i < 600; i++ {
		second = append(second, service(i))
		if i == 449 {
			second = append(second, service(7))
		}
	}
	steps := ipvs.Diff(func() (ipvs.Kernel, error) { return k, nil }, second, nil)
	for _, s := range steps {
		if err := s.Do(); err != nil {
			t.Fatal(err)
		}
	}
	err := steps[0].Flush()
	if err == nil || err.Error() != "ipvs: create tcp/198.18.100.0:10007: file exists" {
		t.Fatalf("Flush: %v", err)
	}
	if n := len(savedRules(t)); n != 600 {
		t.Errorf("%d services after the batch, want 600", n)
	}
	// 600 of the 601 requests of a batch fail: the first failure is reported, no answer is lost.
	var dup []protocol.Service
	for i := 0; i < 600; i++ {
		dup = append(dup, service(i))
	}
	dup = append(dup, service(600))
	steps = ipvs.Diff(func() (ipvs.Kernel, error) { return k, nil }, dup, nil)
	for _, s := range steps {
		if err := s.Do(); err != nil {
			t.Fatal(err)
		}
	}
	if err := steps[0].Flush(); err == nil || err.Error() != "ipvs: create tcp/198.18.100.0:10000: file exists" {
		t.Fatalf("Flush: %v", err)
	}
	if n := len(savedRules(t)); n != 601 {
		t.Errorf("%d services, want 601", n)
	}
	// The client is usable afterwards.
	if err := apply(t, k, []protocol.Service{service(999)}, nil); err != nil {
		t.Fatal(err)
	}
}
