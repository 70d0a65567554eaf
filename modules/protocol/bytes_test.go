package protocol

import (
	"encoding/json"
	"fmt"
	"testing"
)

// A probe's payload crosses the boundary as hex, byte for byte, and leaves no trace when empty; a
// Probe stays comparable.
func TestProbePayloadJSON(t *testing.T) {
	p := Probe{Protocol: "udp", Port: 53, Payload: Payload{Send: "\x00\x01\xff query", Expect: "\x00\x01"}}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"protocol":"udp","vip":"","port":53,"rip":"","source":"","send":"0001ff207175657279","expect":"0001"}`
	if string(b) != want {
		t.Errorf("JSON %s, want %s", b, want)
	}
	var got Probe
	if err := json.Unmarshal(b, &got); err != nil || got != p {
		t.Errorf("decoded %+v, %v", got, err)
	}
	if b, _ := json.Marshal(Probe{Protocol: "tcp", Port: 80}); string(b) != `{"protocol":"tcp","vip":"","port":80,"rip":"","source":""}` {
		t.Errorf("TCP probe: %s", b)
	}
	if err := json.Unmarshal([]byte(`{"send":"0g"}`), &got); err == nil {
		t.Errorf("bad hex decoded")
	}
	if s := fmt.Sprint(p.Send); s != `"\x00\x01\xff query"` {
		t.Errorf("String: %s", s)
	}
	var r ProbeResult
	if err := json.Unmarshal([]byte(`{"protocol":"udp","outcome":"wrong reply"}`), &r); err != nil || r.Outcome != ProbeWrongReply {
		t.Errorf("wrong reply: %+v %v", r, err)
	}
}
