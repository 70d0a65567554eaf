package ipvs

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/tunplan/tunplan/modules/protocol"
)

// table10k is 1,000 services × 10 tunnel destinations, as the benchmark of `make bench` loads.
func table10k() []protocol.Service {
	var out []protocol.Service
	for i := 0; i < 1000; i++ {
		s := protocol.Service{Protocol: "tcp", Address: netip.AddrFrom4([4]byte{198, 18, 100, byte(i / 100)}), Port: uint16(10000 + i%100), Scheduler: "rr"}
		for j := 0; j < 10; j++ {
			s.Destinations = append(s.Destinations, protocol.Destination{Address: netip.AddrFrom4([4]byte{198, 18, 200, byte(1 + j)}), Port: s.Port, Weight: 1, Forward: "tunnel"})
		}
		out = append(out, s)
	}
	return out
}

func BenchmarkDiffLoad10k(b *testing.B) {
	want := table10k()
	for b.Loop() {
		Diff(nil, want, nil)
	}
}

func BenchmarkDiffNoop10k(b *testing.B) {
	want, cur := table10k(), table10k()
	for b.Loop() {
		Diff(nil, want, cur)
	}
}

func BenchmarkQueueLoad10k(b *testing.B) {
	want := table10k()
	k := newFakeKernel()
	for b.Loop() {
		cl, err := open(k.dial)
		if err != nil {
			b.Fatal(err)
		}
		cl.c = discard{}
		for _, s := range Diff(func() (Kernel, error) { return cl, nil }, want, nil) {
			s.Do()
		}
		cl.Flush()
	}
}

// discard acknowledges every batch at once.
type discard struct{ last []byte }

func (d discard) Send(b []byte) error { return nil }
func (d discard) Recv(buf []byte, block bool) (int, error) {
	return 0, fmt.Errorf("not used")
}
func (d discard) Close() error { return nil }

func BenchmarkParseProc10k(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n")
	for _, s := range table10k() {
		fmt.Fprintf(&sb, "TCP  %s rr \n", hexAP(netip.AddrPortFrom(s.Address, s.Port)))
		for _, d := range s.Destinations {
			fmt.Fprintf(&sb, "  -> %s      %-7s %-6d %-10d %-10d\n", hexAP(netip.AddrPortFrom(d.Address, d.Port)), "Tunnel", d.Weight, 0, 0)
		}
	}
	text := []byte(sb.String())
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if t, err := parseProc(text); err != nil || len(t) != 1000 {
			b.Fatal(err)
		}
	}
}
