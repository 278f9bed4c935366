//go:build js && wasm

package main

import (
	"fmt"
	"syscall/js"
	"time"

	"github.com/castvideo/castgo/cast/preprocess"
)

// viewLogits implements castgo.viewLogits(handle, {numFrames, width, height, frames, views?}) →
// Promise<{heads, views: [{head: Float32Array}], ms: [per view]}>: the raw logits of every view of the
// video (sampled, cropped and normalised exactly as classify does), one forward pass per view, with the
// time of each pass. The page's "compare backends" control runs it on the CPU and on WebGPU.
func viewLogits(args []js.Value) (func(progressFunc) (any, error), error) {
	m, opts, s, err := videoRequest(args)
	if err != nil {
		return nil, err
	}
	views, needed, raw, err := planFrames(m, s, opts)
	if err != nil {
		return nil, err
	}
	return func(yield progressFunc) (any, error) {
		frames := make(map[int]preprocess.Frame, len(needed))
		for _, idx := range needed {
			f, err := preprocess.FrameFromRGBA(s.width, s.height, raw[idx])
			if err != nil {
				return nil, fmt.Errorf("frame %d: %w", idx, err)
			}
			frames[idx] = f
		}
		cfg := m.clf.Meta.Config
		prep, err := preprocess.Prepare(frames, views, cfg.ImgSize)
		if err != nil {
			return nil, err
		}
		heads := cfg.Heads()
		out := js.Global().Get("Object").New()
		hs := js.Global().Get("Array").New()
		for _, h := range heads {
			hs.Call("push", h)
		}
		out.Set("heads", hs)
		perView := js.Global().Get("Array").New()
		msList := js.Global().Get("Array").New()
		x := make([]float32, m.clf.Model.ClipLen())
		for i, v := range views {
			if err := prep.ClipTensor(v, x); err != nil {
				return nil, fmt.Errorf("view %d: %w", i, err)
			}
			start := time.Now()
			logits, err := m.clf.Model.Run(x, 1)
			if err != nil {
				return nil, err
			}
			msList.Call("push", float64(time.Since(start).Microseconds())/1000)
			o := js.Global().Get("Object").New()
			for k, h := range heads {
				o.Set(h, float32Array(logits[k]))
			}
			perView.Call("push", o)
			yield("view", i+1, len(views))
		}
		out.Set("views", perView)
		out.Set("ms", msList)
		return out, nil
	}, nil
}

// float32Array copies v into a new Float32Array.
func float32Array(v []float32) js.Value {
	a := js.Global().Get("Float32Array").New(len(v))
	for i, f := range v {
		a.SetIndex(i, f)
	}
	return a
}
