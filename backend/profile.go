package backend

import "github.com/castvideo/castgo/backend/cpu"

// ProfileEntry is the accumulated wall time of the plan steps with one label.
type ProfileEntry = cpu.ProfileEntry

// EnableProfile turns the recording of each plan step's wall time on or off (all executables).
func EnableProfile(on bool) { cpu.EnableProfile(on) }

// ResetProfile clears the recorded times.
func ResetProfile() { cpu.ResetProfile() }

// Profile returns the recorded times by step label, the largest total first.
func Profile() []ProfileEntry { return cpu.Profile() }

// ProfileReport formats the top entries of Profile as a table.
func ProfileReport(top int) string { return cpu.ProfileReport(top) }

// PlanSteps returns the labels of the steps of a compiled executable of this backend, in execution order
// (nil for other executables): for tests and debugging.
func PlanSteps(exec any) []string {
	e, ok := exec.(*Executable)
	if !ok || e == nil {
		return nil
	}
	out := make([]string, len(e.plan.Steps))
	for i, st := range e.plan.Steps {
		out[i] = st.Label
	}
	return out
}
