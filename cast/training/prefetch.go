package training

import (
	"fmt"
	"math/rand/v2"

	"github.com/castvideo/castgo/cast"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// prefetcher is the training train.Dataset: worker goroutines render and preprocess the next batches while
// the model works on the current one. Batch k holds clips start+k·B … start+(k+1)·B-1, each augmented with
// its own generator seeded by (seed, clip index), so the data is the same whatever the number of workers
// and a resumed run sees exactly the clips an uninterrupted one would.
type prefetcher struct {
	outs []chan batchOrErr
	k    int
	done chan struct{}
}

type batchOrErr struct {
	inputs, labels []*tensors.Tensor
	err            error
}

func newPrefetcher(src Source, batch int, cfg cast.Config, seed uint64, start, workers int) *prefetcher {
	workers = max(workers, 1)
	p := &prefetcher{done: make(chan struct{})}
	for w := 0; w < workers; w++ {
		out := make(chan batchOrErr, 1)
		p.outs = append(p.outs, out)
		go func(w int) {
			for k := w; ; k += workers {
				in, lab, err := renderBatch(src, batch, cfg, seed, start+k*batch)
				select {
				case out <- batchOrErr{in, lab, err}:
				case <-p.done:
					return
				}
				if err != nil {
					return
				}
			}
		}(w)
	}
	return p
}

func (p *prefetcher) Name() string { return "cast-clips" }
func (p *prefetcher) Reset()       {}
func (p *prefetcher) stop()        { close(p.done) }

func (p *prefetcher) Yield() (spec any, inputs, labels []*tensors.Tensor, err error) {
	b := <-p.outs[p.k%len(p.outs)]
	p.k++
	if b.err != nil {
		return nil, nil, nil, b.err
	}
	return b.inputs[0].Shape().Dimensions[0], b.inputs, b.labels, nil
}

// clipRand is the augmentation generator of training clip idx.
func clipRand(seed uint64, idx int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15^uint64(idx)))
}

func renderBatch(src Source, n int, c cast.Config, seed uint64, first int) (inputs, labels []*tensors.Tensor, err error) {
	clipLen := c.InChans * c.AllFrames * c.ImgSize * c.ImgSize
	x := make([]float32, n*clipLen)
	y := make([]int32, n)
	for i := 0; i < n; i++ {
		idx := first + i
		if l := src.Len(); l > 0 {
			idx %= l
		}
		clip, label, err := src.Example(idx, clipRand(seed, first+i))
		if err != nil {
			return nil, nil, fmt.Errorf("clip %d: %w", idx, err)
		}
		if len(clip) != clipLen {
			return nil, nil, fmt.Errorf("clip %d has %d values, the model needs %d", idx, len(clip), clipLen)
		}
		copy(x[i*clipLen:], clip)
		y[i] = int32(label)
	}
	inputs = []*tensors.Tensor{tensors.FromFlatDataAndDimensions(x, n, c.InChans, c.AllFrames, c.ImgSize, c.ImgSize)}
	labels = []*tensors.Tensor{tensors.FromFlatDataAndDimensions(y, n, 1)}
	return inputs, labels, nil
}
