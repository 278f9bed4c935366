// Package preprocess is CAST's official test-time input pipeline (CAST.md §1.7 and
// goldens/preprocess/README.md): frame sampling per view, OpenCV-exact uint8 bilinear resize of the short
// side, spatial crops, and ImageNet normalisation into the [3, T, S, S] float32 clip the model reads.
// It is pure Go with no I/O, so the CLI, the WASM module and the edge worker share it.
package preprocess

// Sampling names a temporal sampling scheme of the official test loop.
type Sampling string

const (
	// Segment is SSv2/EPIC sampling: the video is cut into T segments; clip 0 takes segment starts,
	// clip 1 segment midpoints.
	Segment Sampling = "segment"
	// Dense is K400 sampling: every SamplingRate-th frame, T consecutive entries per clip, clips spread evenly.
	Dense Sampling = "dense"
)

// Protocol is a model's test-time view protocol: how many temporal clips and spatial crops, and how frames
// are sampled. It is stored in the model file's metadata.
type Protocol struct {
	Sampling     Sampling `json:"sampling"`                // Segment or Dense
	Clips        int      `json:"clips"`                   // temporal clips (2 for SSv2/EPIC, 5 for K400; 1 = fast mode)
	Crops        int      `json:"crops"`                   // spatial crops along the long side (3, or 1 = centre)
	SamplingRate int      `json:"sampling_rate,omitempty"` // Dense only: frame stride (4)
}

// SSv2 is the official SSv2 and EPIC-KITCHENS-100 protocol: segment sampling, 2 clips × 3 crops.
var SSv2 = Protocol{Sampling: Segment, Clips: 2, Crops: 3}

// K400 is the official Kinetics-400 protocol: dense sampling at stride 4, 5 clips × 3 crops.
var K400 = Protocol{Sampling: Dense, Clips: 5, Crops: 3, SamplingRate: 4}
