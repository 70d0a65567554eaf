package fleet

import (
	"fmt"

	"github.com/tunplan/tunplan/modules/protocol"
)

// Doctor is the phase of `tunplan doctor`: the host's own state files, read.
const Doctor Phase = "doctor"

// Doctor asks every connected host whether tunplan can read the state it keeps there (its
// generations, last-run record and claim). It changes nothing and takes no lock, so it answers
// while another run holds a host. A helper that answers without a report is a failure of that host.
func (r *Run) Doctor() {
	r.request(r.Hosts, Doctor, func(h *HostRun) protocol.Request {
		return protocol.Request{Op: protocol.OpDoctor, Host: h.Name()}
	})
	for _, h := range r.Hosts {
		for i := range h.Results {
			if res := &h.Results[i]; res.Phase == Doctor && res.Err == nil && res.Response.Doctor == nil {
				res.Err = fmt.Errorf("host %s: the helper answered doctor without a report", h.Name())
			}
		}
	}
}

// DoctorReport is what the host reported in the Doctor phase; nil when it did not take part or
// failed.
func (h *HostRun) DoctorReport() *protocol.DoctorReport {
	r, ok := h.Result(Doctor)
	if !ok || r.Err != nil {
		return nil
	}
	return r.Response.Doctor
}
