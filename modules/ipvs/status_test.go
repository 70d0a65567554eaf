package ipvs

import (
	"net/netip"
	"testing"

	"github.com/tunplan/tunplan/modules/protocol"
)

// Status lists the wanted services in the order asked, from one service dump and one destination
// dump per wanted service in the kernel; each service's destinations are sorted by address, then
// port, with their weights and counters; a service the kernel lacks is Missing, with an empty list.
func TestStatus(t *testing.T) {
	cl, k := testClient(t)
	if err := load(t, cl, 3); err != nil {
		t.Fatal(err)
	}
	extra := benchDest(0) // 198.18.200.1:79, listed before 198.18.200.1:80
	extra.Port = 79
	if err := cl.Queue(Write{Cmd: NewDest, Service: benchService(1), Dest: extra, Name: "create"}); err != nil {
		t.Fatal(err)
	}
	if err := cl.Flush(); err != nil {
		t.Fatal(err)
	}
	busy := protocol.Counters{ActiveConns: 2, InactiveConns: 5, Conns: 1 << 33, InPackets: 40, InBytes: 6000}
	k.counts = map[string]protocol.Counters{"198.18.200.1:80": busy}
	k.sends = nil

	key := func(i int) protocol.Key {
		s := benchService(i)
		return protocol.Key{Protocol: "tcp", Address: s.Address, Port: s.Port}
	}
	missing := protocol.Key{Protocol: "udp", Address: vip, Port: 53}
	got, err := Status(cl, []protocol.Key{key(1), missing, key(0)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Service != key(1) || got[1].Service != missing || got[2].Service != key(0) {
		t.Fatalf("services %+v", got)
	}
	if m := got[1]; !m.Missing || m.Destinations == nil || len(m.Destinations) != 0 || m.Scheduler != "" {
		t.Errorf("missing service %+v, want Missing with an empty list", m)
	}
	r1 := netip.MustParseAddr("198.18.200.1")
	for _, tc := range []struct {
		s    protocol.ServiceStatus
		want []protocol.DestinationStatus // the first ones
		n    int
	}{
		{got[0], []protocol.DestinationStatus{{Address: r1, Port: 79, Weight: 1}, {Address: r1, Port: 80, Weight: 1, Counters: busy}}, 11},
		{got[2], []protocol.DestinationStatus{{Address: r1, Port: 80, Weight: 1, Counters: busy}}, 10},
	} {
		ds := tc.s.Destinations
		if tc.s.Missing || tc.s.Scheduler != "rr" || len(ds) != tc.n {
			t.Fatalf("%s: %+v, want %d destinations", tc.s.Service, tc.s, tc.n)
		}
		for i, w := range tc.want {
			if ds[i] != w {
				t.Errorf("%s: destination %d is %+v, want %+v", tc.s.Service, i, ds[i], w)
			}
		}
		for i := 1; i < len(ds); i++ {
			if netip.AddrPortFrom(ds[i].Address, ds[i].Port).Compare(netip.AddrPortFrom(ds[i-1].Address, ds[i-1].Port)) <= 0 {
				t.Errorf("%s: destinations not sorted: %+v", tc.s.Service, ds)
				break
			}
		}
		if last := ds[len(ds)-1]; last.Address != netip.MustParseAddr("198.18.200.10") || last.Counters != (protocol.Counters{}) {
			t.Errorf("%s: last destination %+v", tc.s.Service, last)
		}
	}
	dumps := map[Cmd]int{}
	for _, ms := range k.sends {
		for _, m := range ms {
			dumps[Cmd(m.data[0])]++
		}
	}
	if dumps[getService] != 1 || dumps[getDest] != 2 || len(dumps) != 2 {
		t.Errorf("requests by command %v, want one service dump and a destination dump per wanted service", dumps)
	}

	k.sends = nil
	if got, err := Status(cl, []protocol.Key{missing}); err != nil || len(got) != 1 || !got[0].Missing || len(k.sends) != 1 {
		t.Errorf("only a missing service: %+v, %v, %d requests, want the service dump alone", got, err, len(k.sends))
	}
}
