package health

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tunplan/tunplan/modules/ipvs"
	"github.com/tunplan/tunplan/modules/protocol"
)

// BenchmarkWatcher1000 runs the watcher for 12 s over 500 services of two destinations each
// (1,000 checks every 2 s, TCP connects to a listener of this process), with the production
// periods, and reports the process's CPU per second of watching: what the lab's bench measures,
// without the kernel's IPVS, for a profile (-cpuprofile).
func BenchmarkWatcher1000(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	lo := netip.MustParseAddr("127.0.0.1")
	var svcs []protocol.Service
	var spec protocol.WatchSpec
	for i := 0; i < 500; i++ {
		vip := netip.AddrFrom4([4]byte{198, 18, byte(56 + i/256), byte(i % 256)})
		svc := protocol.Service{Protocol: "tcp", Address: vip, Port: 80, Scheduler: "rr"}
		c := protocol.HealthCheck{Service: svc.Key(), Type: protocol.CheckTCP, Port: port, Source: lo, VIP: lo, IntervalMS: 2000, TimeoutMS: 1000, Fall: 2, Rise: 2}
		for j, rip := range []string{"198.18.1.183", "198.18.10.182"} {
			d := protocol.Destination{Address: netip.MustParseAddr(rip), Port: 80, Weight: 1, Forward: "tunnel"}
			svc.Destinations = append(svc.Destinations, d)
			c.Destinations = append(c.Destinations, protocol.CheckedDestination{Address: d.Address, Port: 80, Weight: 1, Mark: protocol.ProbeMarkBase + uint32(2*i+j)})
		}
		svcs = append(svcs, svc)
		spec.Checks = append(spec.Checks, c)
	}
	k := newFakeIPVS(svcs...)
	dir := b.TempDir()
	spec.Metrics = filepath.Join(dir, "tunplan.prom")
	cfg, _ := json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(dir, "watch.json"), cfg, 0o600); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		w := &Watcher{Config: filepath.Join(dir, "watch.json"), Status: filepath.Join(dir, "health.json"), Drains: filepath.Join(dir, "drains.json"),
			IPVS: func() (ipvs.Kernel, error) { return k, nil }, Log: io.Discard, Check: Check, Every: 10 * time.Second, MetricsEvery: 15 * time.Second}
		ctx, cancel := context.WithTimeout(context.Background(), 12*time.Second)
		var before, after syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &before)
		if err := w.Run(ctx); err != nil {
			b.Fatal(err)
		}
		syscall.Getrusage(syscall.RUSAGE_SELF, &after)
		cancel()
		cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
		b.ReportMetric(cpu.Seconds()/12, "vCPU")
		fmt.Printf("cpu %v over 12s: %.3f vCPU\n", cpu, cpu.Seconds()/12)
	}
}
