package synth

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// BoxesFile is the name of the boxes file WriteBoxes writes beside the clips.
const BoxesFile = "boxes.json"

// ClipName is the file name of clip index in a dataset folder (clip_000000.mp4, …).
func ClipName(index int) string { return fmt.Sprintf("clip_%06d.mp4", index) }

// WriteBoxes writes dir/boxes.json for clips 0 … clips-1 of the dataset with the given seed: a JSON object
// from each clip's file name to the target's box in each frame, {"clip_000000.mp4": [[x0, y0, x1, y1], …],
// …}, in pixels (see Boxes). It is the ground truth of `cast explain`'s pointing game.
func WriteBoxes(dir string, seed int64, clips int, opt Options) error {
	if clips < 0 {
		return fmt.Errorf("synth: negative clip count %d", clips)
	}
	all := make(map[string][]Box, clips)
	for i := range clips {
		all[ClipName(i)] = Boxes(seed, i, opt)
	}
	b, err := json.Marshal(all)
	if err != nil {
		return fmt.Errorf("synth: encoding boxes: %w", err)
	}
	path := filepath.Join(dir, BoxesFile)
	if err := os.WriteFile(path+".tmp", append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("synth: writing %s: %w", BoxesFile, err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return fmt.Errorf("synth: writing %s: %w", BoxesFile, err)
	}
	return nil
}

// ReadBoxes reads a boxes file written by WriteBoxes.
func ReadBoxes(path string) (map[string][]Box, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("synth: reading boxes: %w", err)
	}
	var all map[string][]Box
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, fmt.Errorf("synth: %s: %w", path, err)
	}
	for name, boxes := range all {
		for f, bx := range boxes {
			if bx[0] > bx[2] || bx[1] > bx[3] {
				return nil, fmt.Errorf("synth: %s: %s frame %d: box %v has x0 > x1 or y0 > y1", path, name, f, bx)
			}
		}
	}
	return all, nil
}
