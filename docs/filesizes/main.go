// Command filesizes prints the model file size of every preset, float32 and int8, as `cast convert`
// (and `cast convert --quantize int8`) would write it: the full state dict of the preset's config, with the
// built-in class labels and the default view protocol, encoded with modelfile.Write into a byte counter.
// The weights are the goldens' counter-hash recipe (cast/hashinit); a file's size depends only on the
// shapes, the labels and the metadata, not on the values. It is the command behind README.md's table of
// preset file sizes:
//
//	go run ./docs/filesizes            # all presets (holds one float32 state dict, ~0.9 GB, at a time)
//	go run ./docs/filesizes demo       # only the named presets
//	go run ./docs/filesizes -memory    # instead: the memory estimate of one view (cast.Config.Memory(1)),
//	                                   # behind worker/README.md's "does not fit" figures; instant
//	go run ./docs/filesizes -write DIR base-ssv2
//	                                   # also write the files, DIR/NAME.safetensors and DIR/NAME-int8.safetensors
//	                                   # (what docs/speed.sh measures the int8 model's memory with)
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/hashinit"
	"github.com/castvideo/castgo/cast/modelfile"
	"github.com/castvideo/castgo/cast/preprocess"
	"github.com/castvideo/castgo/cast/weights"
	"github.com/castvideo/castgo/labels"
)

// counter is an io.Writer that only counts.
type counter int64

func (c *counter) Write(p []byte) (int, error) { *c += counter(len(p)); return len(p), nil }

func main() {
	names := os.Args[1:]
	memory := len(names) > 0 && names[0] == "-memory"
	if memory {
		names = names[1:]
	}
	if len(names) > 1 && names[0] == "-write" {
		writeDir, names = names[1], names[2:]
		if err := os.MkdirAll(writeDir, 0o755); err != nil {
			fmt.Fprintf(os.Stderr, "filesizes: %v\n", err)
			os.Exit(1)
		}
	}
	if len(names) == 0 {
		names = cast.PresetNames()
	}
	if memory {
		fmt.Println("| preset | float32 weights | activations of one view | largest sub-layer (attention scores, MLP hidden) | total |")
		fmt.Println("|---|---|---|---|---|")
		for _, name := range names {
			cfg, ok := cast.Presets[name]
			if !ok {
				fmt.Fprintf(os.Stderr, "filesizes: unknown preset %q (have %v)\n", name, cast.PresetNames())
				os.Exit(2)
			}
			m := cfg.Memory(1)
			gb := func(b int64) string { return fmt.Sprintf("%.3f GB", float64(b)/1e9) }
			fmt.Printf("| %s | %s | %s | %s | %s |\n", name, gb(m.Weights), gb(m.Activations), gb(m.Transient), gb(m.Total))
		}
		return
	}
	fmt.Println("| preset | parameters | float32 file | int8 file |")
	fmt.Println("|---|---|---|---|")
	for _, name := range names {
		cfg, ok := cast.Presets[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "filesizes: unknown preset %q (have %v)\n", name, cast.PresetNames())
			os.Exit(2)
		}
		fp32, int8, params, err := sizes(name, cfg)
		if err != nil {
			fmt.Fprintf(os.Stderr, "filesizes: %s: %v\n", name, err)
			os.Exit(1)
		}
		fmt.Printf("| %s | %d | %.1f MB (%d B) | %.1f MB (%d B) |\n", name, params, float64(fp32)/1e6, fp32, float64(int8)/1e6, int8)
	}
}

// writeDir, when set (-write DIR), receives the model files that sizes counts.
var writeDir string

// sizes writes the preset's model file, float32 then int8, into a counter.
func sizes(name string, cfg cast.Config) (fp32, int8 int64, params int, err error) {
	set := weights.Set{}
	for n, shape := range cfg.Shapes() {
		set[n] = weights.NewF32(shape, hashinit.Tensor(1, n, shape))
	}
	params, _ = cfg.ParamCounts()
	names, ok := labels.ForConfig(cfg)
	if !ok {
		names = map[string][]string{}
		for i, h := range cfg.Heads() {
			names[h] = labels.Generic(cfg.HeadClasses()[i])
		}
	}
	// cast convert's default protocol: K400's dense 5x3 for a 400-class model, SSv2's segment 2x3 otherwise.
	proto := preprocess.SSv2
	if cfg.NumClasses == 400 {
		proto = preprocess.K400
	}
	meta := modelfile.Metadata{Name: name, Config: cfg, Labels: names, Protocol: proto}
	fp32, err = write(&modelfile.File{Meta: meta, Weights: set}, name)
	if err != nil {
		return 0, 0, 0, err
	}
	q, err := cast.QuantizeInt8(set, nil)
	if err != nil {
		return 0, 0, 0, err
	}
	int8, err = write(&modelfile.File{Meta: meta, Weights: q}, name+"-int8")
	return fp32, int8, params, err
}

// write counts the bytes of f's model file and, with -write, saves it as writeDir/stem.safetensors.
func write(f *modelfile.File, stem string) (int64, error) {
	var c counter
	if err := modelfile.Write(&c, f); err != nil {
		return 0, err
	}
	if writeDir != "" {
		if err := modelfile.Save(filepath.Join(writeDir, stem+".safetensors"), f); err != nil {
			return 0, err
		}
	}
	return int64(c), nil
}
