package protocol

// DoctorReport is what `tunplan doctor` learns of the state tunplan keeps on one host (StateDir):
// how many state files the helper read, and each one it cannot use. A host tunplan never changed
// has none, and no problem.
type DoctorReport struct {
	Checked  int            `json:"checked"` // state files read: the generations, the last-run record, the claim
	Problems []StateProblem `json:"problems,omitempty"`
}

// Healthy tells whether every state file could be read.
func (d DoctorReport) Healthy() bool { return len(d.Problems) == 0 }

// StateProblem is one state file the helper cannot use, with what is wrong and how to repair it.
type StateProblem struct {
	Path  string `json:"path"`  // the file's full path on the host: "/var/lib/tunplan/generations/000003.json"
	Issue string `json:"issue"` // what is wrong: "it is empty", "unexpected end of JSON input"
	Fix   string `json:"fix"`   // what to run on the host, and what follows from it
}
