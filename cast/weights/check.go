package weights

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// ShapeMismatch is one tensor whose shape differs from the expected one.
type ShapeMismatch struct {
	Name string // state-dict name
	Got  []int  // shape in the set
	Want []int  // expected shape
}

// MismatchError reports every difference between a Set and the expected names and shapes, each list sorted
// by name.
type MismatchError struct {
	Missing    []string        // expected names absent from the set
	Unexpected []string        // names in the set that were not expected
	Shapes     []ShapeMismatch // names present in both with different shapes
}

// Error lists all the differences, one group per line.
func (e *MismatchError) Error() string {
	var parts []string
	if len(e.Missing) > 0 {
		parts = append(parts, fmt.Sprintf("%d missing: %s", len(e.Missing), strings.Join(e.Missing, ", ")))
	}
	if len(e.Unexpected) > 0 {
		parts = append(parts, fmt.Sprintf("%d unexpected: %s", len(e.Unexpected), strings.Join(e.Unexpected, ", ")))
	}
	if len(e.Shapes) > 0 {
		s := make([]string, len(e.Shapes))
		for i, m := range e.Shapes {
			s[i] = fmt.Sprintf("%s is %v, want %v", m.Name, m.Got, m.Want)
		}
		parts = append(parts, fmt.Sprintf("%d shape mismatches: %s", len(e.Shapes), strings.Join(s, "; ")))
	}
	return "weights do not match the expected state dict: " + strings.Join(parts, "; ")
}

// Check compares the names and shapes of set with expected (name → shape) and returns nil when they agree
// exactly, or a *MismatchError naming every missing key, unexpected key and shape mismatch.
func Check(set Set, expected map[string][]int) error {
	e := &MismatchError{}
	for name, want := range expected {
		t, ok := set[name]
		if !ok || t == nil {
			e.Missing = append(e.Missing, name)
			continue
		}
		if !slices.Equal(t.Shape, want) {
			e.Shapes = append(e.Shapes, ShapeMismatch{Name: name, Got: slices.Clone(t.Shape), Want: slices.Clone(want)})
		}
	}
	for name := range set {
		if _, ok := expected[name]; !ok {
			e.Unexpected = append(e.Unexpected, name)
		}
	}
	if len(e.Missing) == 0 && len(e.Unexpected) == 0 && len(e.Shapes) == 0 {
		return nil
	}
	sort.Strings(e.Missing)
	sort.Strings(e.Unexpected)
	sort.Slice(e.Shapes, func(i, j int) bool { return e.Shapes[i].Name < e.Shapes[j].Name })
	return e
}
