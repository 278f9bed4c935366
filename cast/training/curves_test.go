package training

import (
	"bytes"
	"image/png"
	"math"
	"strings"
	"testing"
)

func TestParseLogAndPlot(t *testing.T) {
	log := `backend: castgo
step 10/100  ~loss 2.7797  ~acc 0.056  83.1s  0.13 steps/s
step 20/100  ~loss 2.5000  ~acc 0.150  90.1s  0.13 steps/s  held-out acc 0.2000 loss 2.4000
step 20/100  ~loss 2.4000  ~acc 0.160  91.1s  0.13 steps/s  held-out acc 0.2500 loss 2.3000
step 30/100  ~loss 2.1000  ~acc 0.300  99.1s  NaN steps/s
step 30/100  ~loss NaN  ~acc NaN  final  held-out acc 0.3000 loss 2.0000
step 40/100  ~loss +Inf  ~acc NaN  final
`
	pts, err := ParseLog(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	// The resumed run's NaN "final" line keeps the step's moving averages and adds its held-out numbers; the
	// non-finite step 40 must be skipped by the plot (it once sent drawLine over 2^63 pixels: a hang).
	if len(pts) != 4 || pts[1].Step != 20 || pts[1].EvalAcc != 0.25 || pts[1].EvalLoss != 2.3 || !math.IsNaN(pts[0].EvalAcc) ||
		pts[2].Loss != 2.1 || pts[2].Acc != 0.3 || pts[2].EvalAcc != 0.3 || !math.IsInf(pts[3].Loss, 1) {
		t.Fatalf("parsed %+v", pts)
	}
	var buf bytes.Buffer
	if err := PlotCurves(&buf, pts); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil || img.Bounds().Dx() != 1000 {
		t.Fatalf("plot: %v", err)
	}
}
