package host

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/tunplan/tunplan/modules/protocol"
)

// doctor reads every state file tunplan keeps under Dir (each generation, the last-run record and
// the claim) and reports each one that cannot be used, with how to repair it. Diff, apply,
// rollback, history, destroy and the boot restore fail on an unreadable generation and send the
// operator here. It changes nothing and takes no lock, like history: every state file is replaced
// whole by a rename (files.Replace), so a run under way never shows it half a file.
func (e *Engine) doctor() (*protocol.DoctorReport, error) {
	ns, err := e.generationNumbers()
	if err != nil {
		return nil, err
	}
	rep := &protocol.DoctorReport{}
	for _, n := range ns {
		var g protocol.Generation
		check(rep, genName(n), e.genPath(n), &g, generationFix)
	}
	var rec protocol.LastRun
	check(rep, lastRunName, e.lastRunPath(), &rec, lastRunFix)
	var c claim
	check(rep, claimName, e.claimPath(), &c, claimFix)
	var d protocol.Drains
	check(rep, drainsName, e.drainPath(), &d, drainsFix)
	return rep, nil
}

// check reads the state file at path into v and adds it to rep: counted when it is there, and a
// problem, with fix's repair, when it cannot be read. A file that is not there is no problem: the
// last-run record and the claim are written by the first apply, and a generation listed a moment
// ago may have been removed since by a destroy.
func check(rep *protocol.DoctorReport, what, path string, v any, fix func(path string) string) {
	err := readState(what, path, v)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	rep.Checked++
	var se *stateError
	if errors.As(err, &se) {
		rep.Problems = append(rep.Problems, protocol.StateProblem{Path: path, Issue: se.err.Error(), Fix: fix(path)})
	}
}

// generationFix is the repair of an unreadable generation. Moved aside under a name that is not a
// generation's, it is no longer read; the newest generation left is then what tunplan owns, and the
// next apply records its successor.
func generationFix(path string) string {
	return fmt.Sprintf("move it aside, as root on the host: mv %s %s.corrupt; then run tunplan diff to see what differs "+
		"from the plan, and tunplan apply to converge again. Objects that only this generation recorded are no longer "+
		"known as tunplan's (apply leaves them alone: remove them by hand if the plan no longer wants them), and the "+
		"host can no longer be rolled back to it", path, path)
}

// lastRunFix is the repair of an unreadable last-run record, which only tells the next diff how the
// last apply or rollback ended.
func lastRunFix(path string) string {
	return fmt.Sprintf("remove it, as root on the host: rm %s; it only records how the last apply or rollback "+
		"ended, and the next one writes it again", path)
}

// claimFix is the repair of an unreadable claim, which only keeps the host for the run that wrote
// it (one that cannot be read keeps it for none).
func claimFix(path string) string {
	return fmt.Sprintf("remove it, as root on the host, while no tunplan run is under way there: rm %s; the next "+
		"apply writes it again", path)
}

// drainsFix is the repair of an unreadable drains file: the drains it held are lost with it, so
// they are made again.
func drainsFix(path string) string {
	return fmt.Sprintf("remove it, as root on the host: rm %s; the drains it held are lost: drain those "+
		"realservers again (tunplan drain), then run tunplan diff to see the weights apply would give back", path)
}
