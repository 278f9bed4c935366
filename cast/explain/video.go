package explain

import (
	"fmt"
	"math"
	"slices"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/classify"
	"github.com/castvideo/castgo/cast/preprocess"
)

// Map is one frame's map in a video: the view it belongs to, the frame's index in the video, the rectangle
// of the video's pixels the grid covers [x0, y0, x1, y1] (the view's crop, mapped back through the resize),
// and the grid's scores, Grid rows × Grid columns.
type Map struct {
	View  int         `json:"view"`
	Frame int         `json:"frame"`
	Rect  [4]float64  `json:"rect"`
	Grid  [][]float64 `json:"grid"`
	// Pos is the frame's position among the view's frames (0 … T-1; not in the JSON).
	Pos int `json:"-"`
}

// ViewInfo is one explained view: its place in the plan and the top class the maps explain.
type ViewInfo struct {
	View   int                   `json:"view"`
	Clip   int                   `json:"clip"`
	Crop   int                   `json:"crop"`
	Frames []int                 `json:"frames"`
	Top    []classify.Prediction `json:"top"` // per head, the view's top class
}

// Result is the maps of a video: per method, one Map per explained view and frame the method covers.
type Result struct {
	Video   string           `json:"video,omitempty"`
	Model   string           `json:"model"`
	Views   []ViewInfo       `json:"views"`
	Methods map[string][]Map `json:"methods"`
}

// Options select what Video explains.
type Options struct {
	Views   string   // "" (the model's protocol) or CLIPSxCROPS, as classify.Options.Views
	View    int      // index of the view in the plan, or -1 for every view
	Methods []string // method names (nil: all)
}

// Video explains the views of v planned as clf classifies them, with e built on clf's model.
func Video(clf *classify.Classifier, e *Explainer, v classify.Video, opt Options) (*Result, error) {
	views, err := Plan(clf, v.NumFrames, v.Width, v.Height, opt.Views)
	if err != nil {
		return nil, err
	}
	if opt.View >= len(views) || opt.View < -1 {
		return nil, fmt.Errorf("explain: view %d is not in the plan: the plan has %d views (0 to %d)", opt.View, len(views), len(views)-1)
	}
	if opt.View >= 0 {
		views = views[opt.View : opt.View+1]
	}
	frames, err := v.Frames(preprocess.NeededFrames(views))
	if err != nil {
		return nil, err
	}
	return Views(clf, e, frames, v.Width, v.Height, views, max(opt.View, 0), opt.Methods)
}

// Plan lists the views of a video as clf classifies it ("" views: the model's protocol).
func Plan(clf *classify.Classifier, numFrames, width, height int, views string) ([]preprocess.View, error) {
	if numFrames < 1 {
		return nil, fmt.Errorf("explain: the video has no frames")
	}
	p, err := classify.ParseViews(views, clf.Meta.Protocol)
	if err != nil {
		return nil, err
	}
	cfg := clf.Meta.Config
	return preprocess.Plan(p, numFrames, width, height, cfg.ImgSize, cfg.AllFrames)
}

// Views explains the given views of a video of width×height pixels whose needed frames are decoded in
// frames; the first view is numbered first in the result.
func Views(clf *classify.Classifier, e *Explainer, frames map[int]preprocess.Frame, width, height int,
	views []preprocess.View, first int, methods []string) (*Result, error) {
	methods, err := ParseMethods(methods)
	if err != nil {
		return nil, err
	}
	cfg := clf.Meta.Config
	prep, err := preprocess.Prepare(frames, views, cfg.ImgSize)
	if err != nil {
		return nil, err
	}
	res := &Result{Model: clf.Meta.Name, Methods: map[string][]Map{}}
	x := make([]float32, preprocess.TensorLen(cfg.ImgSize, cfg.AllFrames))
	for i, v := range views {
		if err := prep.ClipTensor(v, x); err != nil {
			return nil, fmt.Errorf("view %d: %w", first+i, err)
		}
		c, err := e.Explain(x, methods)
		if err != nil {
			return nil, fmt.Errorf("view %d: %w", first+i, err)
		}
		info := ViewInfo{View: first + i, Clip: v.Clip, Crop: v.Crop, Frames: slices.Clone(v.FrameIndices)}
		for h, head := range cfg.Heads() {
			info.Top = append(info.Top, classify.TopK(classify.Softmax(c.Logits[h]), clf.Meta.Labels[head], 1)...)
		}
		res.Views = append(res.Views, info)
		rect := Rect(v, width, height, cfg.ImgSize)
		for _, m := range methods {
			for k, g := range c.Grids[m] {
				if g != nil {
					res.Methods[m] = append(res.Methods[m], Map{View: first + i, Frame: v.FrameIndices[k], Rect: rect, Grid: rows(g), Pos: k})
				}
			}
		}
	}
	return res, nil
}

// Rect is the rectangle [x0, y0, x1, y1] of a width×height video's pixels that view v's size×size crop
// covers: the crop of the frame resized to short side size, scaled back.
func Rect(v preprocess.View, width, height, size int) [4]float64 {
	rw, rh := preprocess.ShortSideSize(width, height, size)
	sx, sy := float64(width)/float64(rw), float64(height)/float64(rh)
	r := func(x float64) float64 { return math.Round(x*100) / 100 }
	return [4]float64{r(float64(v.X0) * sx), r(float64(v.Y0) * sy), r(float64(v.X0+size) * sx), r(float64(v.Y0+size) * sy)}
}

// rows cuts a row-major Grid·Grid map into rows.
func rows(g []float64) [][]float64 {
	out := make([][]float64, cast.Grid)
	for r := range out {
		out[r] = g[r*cast.Grid : (r+1)*cast.Grid]
	}
	return out
}
