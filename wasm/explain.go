//go:build js && wasm

package main

import (
	"fmt"
	"github.com/castvideo/castgo/cast/infer"
	"sync"
	"syscall/js"

	"github.com/castvideo/castgo/cast/explain"
	"github.com/castvideo/castgo/cast/preprocess"
)

var (
	explainMu  sync.Mutex
	explainers = map[*loaded]*explain.Explainer{} // built on a model's first explain call
)

// explainerOf returns m's explainer, compiling its graph on first use.
func explainerOf(m *loaded) (*explain.Explainer, error) {
	explainMu.Lock()
	defer explainMu.Unlock()
	if e := explainers[m]; e != nil {
		return e, nil
	}
	im, ok := m.clf.Model.(*infer.Model)
	if !ok {
		return nil, fmt.Errorf("explain needs a model loaded in this module, not a %T", m.clf.Model)
	}
	e, err := explain.New(im)
	if err != nil {
		return nil, err
	}
	explainers[m] = e
	return e, nil
}

// closeExplainer releases m's explainer, if it has one (before the model itself is closed).
func closeExplainer(m *loaded) {
	explainMu.Lock()
	e := explainers[m]
	delete(explainers, m)
	explainMu.Unlock()
	if e != nil {
		e.Close()
	}
}

// explainVideo implements castgo.explain(handle, {numFrames, width, height, frames, views?, view?,
// methods?}) → Promise<{model, views: [{view, clip, crop, frames, top}], methods: {NAME: [{view, frame,
// rect: [x0, y0, x1, y1], grid: [[…] × 14]}]}}>: the maps of what the model looked at (package explain) for
// view `view` of the plan (castgo.planViews; every view when absent), per frame the model saw. methods is
// an array of names (default: all of "cast-rollout", "spatial-rollout", "temporal-rollout",
// "gradient-x-input", "grad-cam"). frames is given as classify takes it (aligned with the plan's
// neededFrames, all the video's frames, or an object / Map from index to RGBA); with a view, the frames of
// that view are enough. The maps' graph runs on the model's backend (graphs without a WebGPU form run on
// the CPU).
func explainVideo(args []js.Value) (func(progressFunc) (any, error), error) {
	m, opts, s, err := videoRequest(args)
	if err != nil {
		return nil, err
	}
	_, views, err := plan(m, s)
	if err != nil {
		return nil, err
	}
	view := -1
	if v := opts.Get("view"); !isNullish(v) {
		if view, err = intValue(v, "view", true, 0); err != nil {
			return nil, err
		}
		if view < 0 || view >= len(views) {
			return nil, fmt.Errorf("view %d is not in the plan: it has %d views (0 to %d)", view, len(views), len(views)-1)
		}
	}
	methods, err := readMethods(opts.Get("methods"))
	if err != nil {
		return nil, err
	}
	first, chosen := 0, views
	if view >= 0 {
		first, chosen = view, views[view:view+1]
	}
	needed := preprocess.NeededFrames(chosen)
	if total := int64(len(needed)) * int64(s.width) * int64(s.height) * 4; total > MaxFrameBytes {
		return nil, fmt.Errorf("the %d needed frames of %dx%d pixels are %d MiB of RGBA, more than the limit of %d MiB: scale the frames down",
			len(needed), s.width, s.height, total>>20, MaxFrameBytes>>20)
	}
	frames := opts.Get("frames")
	alignedWith := needed
	if all := preprocess.NeededFrames(views); js.Global().Get("Array").Call("isArray", frames).Bool() && frames.Length() == len(all) {
		alignedWith = all // an array aligned with the whole plan's neededFrames, as classify takes it
	}
	raw, err := readFrames(frames, alignedWith, s.numFrames, s.width*s.height*4)
	if err != nil {
		return nil, err
	}
	return func(yield progressFunc) (any, error) {
		e, err := explainerOf(m)
		if err != nil {
			return nil, err
		}
		decoded := make(map[int]preprocess.Frame, len(needed))
		for _, idx := range needed {
			f, err := preprocess.FrameFromRGBA(s.width, s.height, raw[idx])
			if err != nil {
				return nil, fmt.Errorf("frame %d: %w", idx, err)
			}
			decoded[idx] = f
		}
		res, err := explain.Views(m.clf, e, decoded, s.width, s.height, chosen, first, methods)
		if err != nil {
			return nil, err
		}
		yield("view", len(chosen), len(chosen))
		return toJS(res)
	}, nil
}

// readMethods reads the optional methods option: an array of method names.
func readMethods(v js.Value) ([]string, error) {
	if isNullish(v) {
		return nil, nil
	}
	if !js.Global().Get("Array").Call("isArray", v).Bool() {
		return nil, fmt.Errorf("methods must be an array of names such as [%q], got %s", explain.MethodCAST, describe(v))
	}
	names := make([]string, v.Length())
	for i := range names {
		n := v.Index(i)
		if n.Type() != js.TypeString {
			return nil, fmt.Errorf("methods[%d] must be a string, got %s", i, describe(n))
		}
		names[i] = n.String()
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("methods is empty: leave it out for every method (%v)", explain.Methods)
	}
	return explain.ParseMethods(names)
}
