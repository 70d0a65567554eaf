package protocol

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
)

// A destination's tunnel crosses the boundary typed: IPIP leaves no trace (a state written before
// GUE and GRE reads as IPIP), GUE and GRE round-trip with their port and flags, and a type or fou
// listener this side does not know is an error.
func TestTunnelJSON(t *testing.T) {
	ipip := Destination{Address: netip.MustParseAddr("198.18.1.183"), Port: 80, Weight: 1, Forward: ForwardTunnel}
	b, err := json.Marshal(ipip)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"address":"198.18.1.183","port":80,"weight":1,"forward":"tunnel"}`; string(b) != want {
		t.Errorf("IPIP destination: %s, want %s", b, want)
	}
	for _, d := range []Destination{
		{Address: ipip.Address, Port: 80, Weight: 1, Forward: ForwardTunnel, Tunnel: Tunnel{Type: TunnelGUE, Port: 6080, Checksum: true, RemoteChecksum: true}},
		{Address: ipip.Address, Port: 80, Weight: 1, Forward: ForwardTunnel, Tunnel: Tunnel{Type: TunnelGRE, Checksum: true}},
		{Address: ipip.Address, Port: 80, Weight: 1, Forward: ForwardTunnel, Tunnel: Tunnel{Type: TunnelGUE, Port: 6080}},
	} {
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		var got Destination
		if err := json.Unmarshal(b, &got); err != nil || got != d {
			t.Errorf("%s: got %+v, %v", b, got, err)
		}
	}
	var got Destination
	if err := json.Unmarshal([]byte(`{"address":"198.18.1.183","port":80,"weight":1,"forward":"tunnel","tunnel":{"type":"ipip"}}`), &got); err != nil || got != ipip {
		t.Errorf(`"type":"ipip": got %+v, %v`, got, err)
	}
	for doc, want := range map[string]string{
		`{"address":"198.18.1.183","port":80,"weight":1,"forward":"tunnel","tunnel":{"type":"vxlan"}}`: `unknown tunnel type "vxlan"`,
		`{"fou":[{"port":6080,"type":"vxlan"}]}`:                                                       `unknown fou type "vxlan"`,
	} {
		var into any = &Destination{}
		if strings.HasPrefix(doc, `{"fou"`) {
			into = &State{}
		}
		if err := json.Unmarshal([]byte(doc), into); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", doc, err, want)
		}
	}
}

func TestTunnelRendering(t *testing.T) {
	d := Destination{Weight: 1, Forward: ForwardTunnel}
	for tun, want := range map[Tunnel]string{
		{}:                            "weight=1 fwd=tunnel",
		{Type: TunnelGUE, Port: 6080}: "weight=1 fwd=tunnel tun=gue:6080",
		{Type: TunnelGUE, Port: 6080, Checksum: true, RemoteChecksum: true}: "weight=1 fwd=tunnel tun=gue:6080,csum,remcsum",
		{Type: TunnelGRE}:                 "weight=1 fwd=tunnel tun=gre",
		{Type: TunnelGRE, Checksum: true}: "weight=1 fwd=tunnel tun=gre,csum",
	} {
		d.Tunnel = tun
		if got := d.Attrs(); got != want {
			t.Errorf("%+v: %q, want %q", tun, got, want)
		}
	}
	for f, want := range map[FouPort]string{{Port: 6080, Type: FouGUE}: "gue", {Port: 6080, Type: FouDirect, Protocol: 4}: "direct ipproto 4"} {
		if got := f.String(); got != want {
			t.Errorf("%+v: %q, want %q", f, got, want)
		}
	}
}
