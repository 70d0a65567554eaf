package fleet

import "github.com/tunplan/tunplan/modules/protocol"

// Doctor is the phase of `tunplan doctor`: the host's own state files, read.
const Doctor Phase = "doctor"

// Doctor asks every connected host whether tunplan can read the state it keeps there (its
// generations, last-run record and claim). It changes nothing and takes no lock, so it answers
// while another run holds a host. A helper that answers without a report is a failure of that host.
func (r *Run) Doctor() {
	r.read(Doctor, protocol.OpDoctor, "a report", func(resp protocol.Response) bool { return resp.Doctor != nil })
}

// DoctorReport is what the host reported in the Doctor phase; nil when it did not take part or
// failed.
func (h *HostRun) DoctorReport() *protocol.DoctorReport {
	if resp := h.answer(Doctor); resp != nil {
		return resp.Doctor
	}
	return nil
}
