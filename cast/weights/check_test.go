package weights

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	f := func(shape ...int) *Tensor { return NewF32(shape, make([]float32, (&Tensor{Shape: shape}).Numel())) }
	expected := map[string][]int{"a.weight": {4, 2}, "a.bias": {4}, "b.weight": {3}, "c": {1, 2, 3}}
	cases := []struct {
		name string
		set  Set
		want *MismatchError // nil: no error
	}{
		{"exact", Set{"a.weight": f(4, 2), "a.bias": f(4), "b.weight": f(3), "c": f(1, 2, 3)}, nil},
		{"missing", Set{"a.weight": f(4, 2), "b.weight": f(3)},
			&MismatchError{Missing: []string{"a.bias", "c"}}},
		{"unexpected", Set{"a.weight": f(4, 2), "a.bias": f(4), "b.weight": f(3), "c": f(1, 2, 3), "z": f(1), "d": f(2)},
			&MismatchError{Unexpected: []string{"d", "z"}}},
		{"shapes", Set{"a.weight": f(2, 4), "a.bias": f(4), "b.weight": f(3, 1), "c": f(1, 2, 3)},
			&MismatchError{Shapes: []ShapeMismatch{{"a.weight", []int{2, 4}, []int{4, 2}}, {"b.weight", []int{3, 1}, []int{3}}}}},
		{"all three", Set{"a.weight": f(4), "b.weight": f(3), "x": f(1)},
			&MismatchError{Missing: []string{"a.bias", "c"}, Unexpected: []string{"x"},
				Shapes: []ShapeMismatch{{"a.weight", []int{4}, []int{4, 2}}}}},
		{"nil tensor counts as missing", Set{"a.weight": f(4, 2), "a.bias": nil, "b.weight": f(3), "c": f(1, 2, 3)},
			&MismatchError{Missing: []string{"a.bias"}}},
		{"empty set", Set{}, &MismatchError{Missing: []string{"a.bias", "a.weight", "b.weight", "c"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Check(c.set, expected)
			if c.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var me *MismatchError
			if !errors.As(err, &me) {
				t.Fatalf("error %v is not a *MismatchError", err)
			}
			if !reflect.DeepEqual(me, c.want) {
				t.Fatalf("got %+v, want %+v", me, c.want)
			}
			msg := err.Error()
			for _, n := range append(append(c.want.Missing, c.want.Unexpected...), shapeNames(c.want.Shapes)...) {
				if !strings.Contains(msg, n) {
					t.Errorf("message %q does not name %q", msg, n)
				}
			}
		})
	}
}

func shapeNames(s []ShapeMismatch) []string {
	var out []string
	for _, m := range s {
		out = append(out, m.Name)
	}
	return out
}
