package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/castvideo/castgo/cast"
	"github.com/castvideo/castgo/cast/checkpoint"
	"github.com/castvideo/castgo/cast/classify"
	"github.com/castvideo/castgo/cast/infer"
	"github.com/castvideo/castgo/cast/modelfile"
	"github.com/castvideo/castgo/cast/preprocess"
	"github.com/castvideo/castgo/cast/weights"
	"github.com/castvideo/castgo/labels"
	"github.com/castvideo/castgo/models"
	"github.com/gomlx/gomlx/backends"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// backendFlag is the global --backend flag ("castgo" (alias "go"), "simplego" or "xla"; default from $CAST_BACKEND, else castgo), bound by
// newRootCmd; commands copy it into their options.
var backendFlag string

// streams is where a command writes: results to stdout; progress, warnings and errors to stderr.
type streams struct{ stdout, stderr io.Writer }

// streamsOf is the output streams of cmd (the process's, or a test's buffers).
func streamsOf(cmd *cobra.Command) streams {
	return streams{stdout: cmd.OutOrStdout(), stderr: cmd.ErrOrStderr()}
}

// newBackend opens the backend chosen by --backend / $CAST_BACKEND and says which one on stderr.
// When XLA is asked for but this binary has no XLA support or no PJRT plugin is installed, it says so
// plainly and falls back to pure Go (nothing is ever downloaded).
func newBackend() (backends.Backend, error) { return openBackend(backendFlag, os.Stderr) }

// openBackend opens the named backend as newBackend does, saying which one on log.
func openBackend(name string, log io.Writer) (backends.Backend, error) {
	b, desc, err := infer.NewBackend(name)
	if errors.Is(err, infer.ErrXLAUnavailable) {
		fmt.Fprintf(log, "warning: %v; using pure Go instead\n", err)
		b, desc, err = infer.NewBackend("go")
	}
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "backend: %s\n", desc)
	return b, nil
}

// resolveConfig reads --config: a preset name (base-ssv2, base-k400, base-epic, demo) or a JSON file
// (a bare model object, or a goldens config.json with a "model" key).
func resolveConfig(spec string) (cast.Config, error) {
	if c, ok := cast.Presets[spec]; ok {
		return c, nil
	}
	if spec == "" {
		return cast.Config{}, fmt.Errorf("--config is required: a preset (%s) or a JSON file", strings.Join(cast.PresetNames(), ", "))
	}
	data, err := os.ReadFile(spec)
	if err != nil {
		return cast.Config{}, fmt.Errorf("--config %q is neither a preset (%s) nor a readable file: %w", spec, strings.Join(cast.PresetNames(), ", "), err)
	}
	c, err := cast.ParseConfig(data)
	if err != nil {
		return cast.Config{}, fmt.Errorf("--config %s: %w", spec, err)
	}
	return c, nil
}

// exitProcess ends the process with a status code; tests replace it so that a command reporting partial
// failure (exit status 1) does not end the test binary.
var exitProcess = os.Exit

// exitPartialFailure reports that some inputs of a command failed while the others were processed: it prints
// msg to log and ends the process with status 1 (main uses 2 for a command that failed outright). When
// exitProcess returns (in tests) it returns msg as an error.
func exitPartialFailure(log io.Writer, msg string) error {
	fmt.Fprintln(log, "cast:", msg)
	exitProcess(1)
	return errors.New(msg)
}

// loadModelFile loads --model: "default" (or "") for the embedded float32 default model, "default-int8" for
// its int8 twin, else a model file path.
func loadModelFile(spec string) (*modelfile.File, error) {
	switch spec {
	case "", models.DefaultName:
		f, err := models.Default()
		if err != nil {
			return nil, fmt.Errorf("embedded default model: %w", err)
		}
		return f, nil
	case models.DefaultName + "-int8":
		f, err := models.DefaultInt8()
		if err != nil {
			return nil, fmt.Errorf("embedded int8 default model: %w", err)
		}
		return f, nil
	}
	f, err := modelfile.Load(spec)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", spec, err)
	}
	return f, nil
}

// checkCheckpoint compares a checkpoint's tensors with cfg's state dict the way the official non-strict loader
// does: missing keys and shape mismatches are fatal (the error names each one), while unexpected keys (such
// as CLIP's unused `clip_proj`) are dropped and returned so the caller can print them as warnings. The
// returned set holds exactly the expected tensors.
func checkCheckpoint(set weights.Set, cfg cast.Config) (weights.Set, []string, error) {
	err := weights.Check(set, cfg.Shapes())
	if err == nil {
		return set, nil, nil
	}
	var mm *weights.MismatchError
	if !errors.As(err, &mm) {
		return nil, nil, err
	}
	if len(mm.Missing) > 0 || len(mm.Shapes) > 0 {
		var parts []string
		if len(mm.Shapes) > 0 {
			s := make([]string, len(mm.Shapes))
			for i, m := range mm.Shapes {
				s[i] = fmt.Sprintf("%s is %v, want %v", m.Name, m.Got, m.Want)
			}
			parts = append(parts, fmt.Sprintf("%d shape mismatches: %s", len(s), listSome(s, 12, "; ")))
		}
		if len(mm.Missing) > 0 {
			parts = append(parts, fmt.Sprintf("%d missing: %s", len(mm.Missing), listSome(mm.Missing, 12, ", ")))
		}
		if len(mm.Unexpected) > 0 {
			parts = append(parts, fmt.Sprintf("%d unexpected (would be ignored): %s", len(mm.Unexpected), listSome(mm.Unexpected, 12, ", ")))
		}
		return nil, nil, fmt.Errorf("the tensors do not fit the config (is --config right?): %s", strings.Join(parts, "; "))
	}
	clean := make(weights.Set, len(set)-len(mm.Unexpected))
	for name, t := range set {
		clean[name] = t
	}
	for _, name := range mm.Unexpected {
		delete(clean, name)
	}
	return clean, mm.Unexpected, nil
}

// readCheckpoint loads an official .pt checkpoint and checks it against cfg (see checkCheckpoint), logging
// progress and the ignored unexpected keys to log.
func readCheckpoint(path string, cfg cast.Config, log io.Writer) (weights.Set, error) {
	fmt.Fprintf(log, "reading checkpoint %s (%s)\n", path, fileSize(path))
	set, err := checkpoint.Load(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	fmt.Fprintf(log, "checking %d tensors (%s values) against the config\n", len(set), commas(int64(numel(set))))
	clean, unexpected, err := checkCheckpoint(set, cfg)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	for _, name := range unexpected {
		fmt.Fprintf(log, "warning: ignoring unexpected key %s %v (the official loader ignores it too)\n", name, set[name].Shape)
	}
	return clean, nil
}

// inferPreset finds the preset whose state dict a checkpoint fits (unexpected keys allowed).
func inferPreset(set weights.Set) (string, cast.Config, error) {
	for _, name := range cast.PresetNames() {
		cfg := cast.Presets[name]
		if _, _, err := checkCheckpoint(set, cfg); err == nil {
			return name, cfg, nil
		}
	}
	return "", cast.Config{}, fmt.Errorf("its tensors fit no preset (%s): pass --config with the model's JSON config", strings.Join(cast.PresetNames(), ", "))
}

// defaultProtocol is the official test protocol for cfg: Kinetics-400's dense 5×3 for a 400-class model,
// else the SSv2 (and EPIC) segment 2×3.
func defaultProtocol(cfg cast.Config) preprocess.Protocol {
	if !cfg.Composition && cfg.NumClasses == 400 {
		return preprocess.K400
	}
	return preprocess.SSv2
}

// modelFromCheckpoint builds an in-memory model file from a checkpoint: labels from the built-in lists
// (generic names when none fits) and the default protocol of the config.
func modelFromCheckpoint(path string, cfg cast.Config, log io.Writer) (*modelfile.File, error) {
	set, err := readCheckpoint(path, cfg, log)
	if err != nil {
		return nil, err
	}
	names, _ := labels.ForConfig(cfg)
	return &modelfile.File{Meta: modelfile.Metadata{Format: modelfile.Format, Name: fileStem(path), Config: cfg,
		Labels: names, Protocol: defaultProtocol(cfg), Quantization: modelfile.QuantNone}, Weights: set}, nil
}

// loadModelOrCheckpoint loads --model, or --checkpoint with --config (exactly one of the two forms).
func loadModelOrCheckpoint(model, ckpt, configSpec string, log io.Writer) (*modelfile.File, error) {
	switch {
	case model != "" && ckpt != "":
		return nil, errors.New("give either --model or --checkpoint with --config, not both")
	case ckpt != "":
		cfg, err := resolveConfig(configSpec)
		if err != nil {
			return nil, err
		}
		return modelFromCheckpoint(ckpt, cfg, log)
	case configSpec != "":
		return nil, errors.New("--config goes with --checkpoint (a model file carries its own config)")
	case model == "":
		return nil, errors.New("give --model MODEL.safetensors (or default), or --checkpoint IN.pt with --config")
	}
	return loadModelFile(model)
}

// describeProtocol formats a protocol as "segment 2×3 (6 views)".
func describeProtocol(p preprocess.Protocol) string {
	s := fmt.Sprintf("%s %dx%d (%d views)", p.Sampling, p.Clips, p.Crops, p.Clips*p.Crops)
	if p.Sampling == preprocess.Dense {
		s += fmt.Sprintf(", every %d frames", p.SamplingRate)
	}
	return s
}

// configName names a --config value for reports: the preset name, the "name" of a goldens config.json,
// or the file name.
func configName(spec string) string {
	if _, ok := cast.Presets[spec]; ok {
		return spec
	}
	if data, err := os.ReadFile(spec); err == nil {
		var probe struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(data, &probe) == nil && probe.Name != "" {
			return probe.Name
		}
	}
	return filepath.Base(spec)
}

// listSome joins at most n items with sep, saying how many more were left out.
func listSome(items []string, n int, sep string) string {
	if len(items) <= n {
		return strings.Join(items, sep)
	}
	return strings.Join(items[:n], sep) + fmt.Sprintf("%s… and %d more", sep, len(items)-n)
}

// numel is the number of values in a weight set.
func numel(set weights.Set) int {
	n := 0
	for _, t := range set {
		n += t.Numel()
	}
	return n
}

// fileStem is the file name of path without directory and extension.
func fileStem(path string) string {
	base := filepath.Base(path)
	return strings.TrimSuffix(base, filepath.Ext(base))
}

// fileSize formats the size of the file at path, or "size unknown".
func fileSize(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return "size unknown"
	}
	return humanBytes(st.Size())
}

// humanBytes formats a byte count with a decimal unit ("1.8 MB").
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}

// commas formats n with thousands separators: 217228590 → "217,228,590".
func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// isTerminal reports whether w is a terminal (progress bars are drawn only then).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress is a progress bar on a terminal and a no-op otherwise (pipes, files, tests).
type progress struct{ bar *progressbar.ProgressBar }

// newProgress starts a progress bar of max steps on w when w is a terminal.
func newProgress(w io.Writer, max int, desc string) *progress {
	if !isTerminal(w) || max <= 0 {
		return &progress{}
	}
	return &progress{bar: progressbar.NewOptions(max, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true), progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())}
}

// Set moves the bar to n steps done.
func (p *progress) Set(n int) {
	if p.bar != nil {
		_ = p.bar.Set(n)
	}
}

// Describe changes the text before the bar.
func (p *progress) Describe(desc string) {
	if p.bar != nil {
		p.bar.Describe(desc)
	}
}

// Finish completes and clears the bar.
func (p *progress) Finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

// Clear erases the bar from the terminal so that other output can be printed; the next Set redraws it.
func (p *progress) Clear() {
	if p.bar != nil {
		_ = p.bar.Clear()
	}
}

// Active reports whether a bar is being drawn.
func (p *progress) Active() bool { return p.bar != nil }

// newClassifier loads f on the backend chosen by --backend (see newBackend), running batch views per model
// call (at least 1).
func newClassifier(f *modelfile.File, batch int) (*classify.Classifier, error) {
	return classifierOn(f, backendFlag, batch, os.Stderr)
}

// classifierOn loads f on the named backend (see openBackend, which reports on log), running batch views per
// model call (at least 1).
func classifierOn(f *modelfile.File, backend string, batch int, log io.Writer) (*classify.Classifier, error) {
	be, err := openBackend(backend, log)
	if err != nil {
		return nil, err
	}
	c, err := classify.New(be, f)
	if err != nil {
		return nil, err
	}
	c.Batch = max(batch, 1)
	return c, nil
}
