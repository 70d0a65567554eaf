package main

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/tunplan/tunplan/modules/host"
)

// FuzzDecode feeds arbitrary bytes to the helper's request decoder: never a panic, and a request
// that decodes encodes back to JSON.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"op":"diff","host":"lvs01","desired":{"modules":["ip_vs"],"services":[{"protocol":"tcp","address":"198.18.48.180","port":80,"scheduler":"rr","destinations":[{"address":"198.18.1.183","port":80,"weight":1,"forward":"tunnel"}]}]}}`))
	f.Add([]byte(`{"op":"rollback","to":0}`))
	f.Add([]byte(`{"op":"apply","desired":{"links":[{"name":"tunl0","addresses":["198.18.48.180/32"]}]}}`))
	f.Add([]byte(`{"op":"diff","unknown":1}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		req, err := decode(bytes.NewReader(in))
		if err != nil {
			return
		}
		if _, err := json.Marshal(req); err != nil {
			t.Fatalf("decoded request does not encode: %v", err)
		}
	})
}

func TestDecodeRefusesUnknownFields(t *testing.T) {
	if _, err := decode(bytes.NewReader([]byte(`{"op":"diff","desried":{}}`))); err == nil {
		t.Error("a misspelt field was accepted")
	}
	req, err := decode(bytes.NewReader([]byte(`{"op":"apply","phase":"add"}`)))
	if err != nil || req.Op != host.OpApply || req.Phase != host.PhaseAdd {
		t.Errorf("%+v %v", req, err)
	}
}
