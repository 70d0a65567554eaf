package host

import (
	"bytes"
	"encoding/json"
	"io"
	"net/netip"
	"testing"

	"github.com/tunplan/tunplan/modules/protocol"
)

// state10k is a director with 1,000 services × 10 tunnel destinations, as `make bench` loads.
func state10k() protocol.State {
	st := director("rr", 1, 1)
	st.Services = nil
	for i := 0; i < 1000; i++ {
		s := protocol.Service{Protocol: "tcp", Address: netip.AddrFrom4([4]byte{198, 18, 100, byte(i / 100)}), Port: uint16(10000 + i%100), Scheduler: "rr"}
		for j := 0; j < 10; j++ {
			s.Destinations = append(s.Destinations, protocol.Destination{Address: netip.AddrFrom4([4]byte{198, 18, 200, byte(1 + j)}), Port: s.Port, Weight: 1, Forward: "tunnel"})
		}
		st.Services = append(st.Services, s)
	}
	return st
}

// benchHandle times what the helper does per request, on fakes: decode the JSON request, handle it,
// encode the answer. The requests take turns; the kernel side is measured on the real kernel by
// `make bench`.
func benchHandle(b *testing.B, wants ...protocol.State) {
	e := newEngine(b, newFake())
	if r := e.Handle(protocol.Request{Op: protocol.OpApply, Desired: wants[len(wants)-1], RunID: "load"}); r.Error != "" {
		b.Fatal(r.Error)
	}
	var reqs [][]byte
	for _, w := range wants {
		req, err := json.Marshal(protocol.Request{Op: protocol.OpApply, Desired: w})
		if err != nil {
			b.Fatal(err)
		}
		reqs = append(reqs, req)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var r protocol.Request
		if err := json.NewDecoder(bytes.NewReader(reqs[i%len(reqs)])).Decode(&r); err != nil {
			b.Fatal(err)
		}
		i++
		resp := e.Handle(r)
		if resp.Error != "" {
			b.Fatal(resp.Error)
		}
		if err := json.NewEncoder(io.Discard).Encode(resp); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNoopApply10k(b *testing.B) { benchHandle(b, state10k()) }

// BenchmarkOneChangeApply10k changes one destination's weight back and forth.
func BenchmarkOneChangeApply10k(b *testing.B) {
	a, c := state10k(), state10k()
	c.Services[0].Destinations[0].Weight = 2
	benchHandle(b, c, a)
}
