package explain

import (
	"fmt"
	"strings"

	"github.com/castvideo/castgo/cast/synth"
)

// The pointing game (Zhang et al. 2016) scores a map by whether its top-scoring cell lands on the object.
// Here a cell lands on it when the cell's centre lies inside the object's box grown by half a cell on each
// side (so a cell that overlaps the box counts, whatever the grid's alignment), and the baseline is the
// chance that a cell drawn at random does (the share of such cells: the box-area baseline).

// Hit reports whether m's top-scoring cell lands on box [x0, y0, x1, y1] (video pixels; columns x0 to
// x1-1). Ties go to the first cell in row-major order.
func Hit(m Map, box [4]int) bool {
	br, bc := 0, 0
	for r, row := range m.Grid {
		for c, v := range row {
			if v > m.Grid[br][bc] {
				br, bc = r, c
			}
		}
	}
	return onBox(m, br, bc, box)
}

// Chance is the share of m's cells that land on box: the pointing game's box-area baseline.
func Chance(m Map, box [4]int) float64 {
	hits, n := 0, 0
	for r, row := range m.Grid {
		for c := range row {
			n++
			if onBox(m, r, c, box) {
				hits++
			}
		}
	}
	if n == 0 {
		return 0
	}
	return float64(hits) / float64(n)
}

// onBox reports whether cell (r, c)'s centre lies in box grown by half a cell.
func onBox(m Map, r, c int, box [4]int) bool {
	rows, cols := len(m.Grid), len(m.Grid[r])
	cw, ch := (m.Rect[2]-m.Rect[0])/float64(cols), (m.Rect[3]-m.Rect[1])/float64(rows)
	x, y := m.Rect[0]+(float64(c)+0.5)*cw, m.Rect[1]+(float64(r)+0.5)*ch
	return x >= float64(box[0])-cw/2 && x <= float64(box[2])+cw/2 && y >= float64(box[1])-ch/2 && y <= float64(box[3])+ch/2
}

// Tally accumulates the pointing game of one method over many maps.
type Tally struct {
	Hits, Maps int
	chance     float64
}

// Add scores one map against its frame's box.
func (t *Tally) Add(m Map, box [4]int) {
	t.Maps++
	if Hit(m, box) {
		t.Hits++
	}
	t.chance += Chance(m, box)
}

// Accuracy is the share of maps whose top cell landed on the box.
func (t Tally) Accuracy() float64 {
	if t.Maps == 0 {
		return 0
	}
	return float64(t.Hits) / float64(t.Maps)
}

// Chance is the mean box-area baseline over the maps.
func (t Tally) Chance() float64 {
	if t.Maps == 0 {
		return 0
	}
	return t.chance / float64(t.Maps)
}

// String formats the tally as "hits/maps = accuracy (chance c)".
func (t Tally) String() string {
	return fmt.Sprintf("%d/%d = %.3f (chance %.3f)", t.Hits, t.Maps, t.Accuracy(), t.Chance())
}

// Score adds every map of r to tallies (by method), each against boxes[frame]; it fails when a map's frame
// has no box.
func Score(r *Result, boxes []synth.Box, tallies map[string]*Tally) error {
	for method, maps := range r.Methods {
		t := tallies[method]
		if t == nil {
			t = &Tally{}
			tallies[method] = t
		}
		for _, m := range maps {
			if m.Frame < 0 || m.Frame >= len(boxes) {
				return fmt.Errorf("explain: %s map of frame %d, but there are boxes for %d frames", method, m.Frame, len(boxes))
			}
			t.Add(m, boxes[m.Frame])
		}
	}
	return nil
}

// Table formats tallies as a Markdown table, methods in the order given.
func Table(methods []string, tallies map[string]*Tally) string {
	var b strings.Builder
	b.WriteString("| method | pointing game | maps | box-area baseline |\n|---|---|---|---|\n")
	for _, m := range methods {
		t := tallies[m]
		if t == nil {
			continue
		}
		fmt.Fprintf(&b, "| %s | %.3f | %d | %.3f |\n", m, t.Accuracy(), t.Maps, t.Chance())
	}
	return b.String()
}
