package preprocess

// mean and std are the ImageNet per-channel (R, G, B) normalisation constants the official test loader
// uses for both experts.
var (
	mean = [3]float64{0.485, 0.456, 0.406}
	std  = [3]float64{0.229, 0.224, 0.225}
)

// normLUT[c][v] is the normalised float32 value of uint8 v in channel c.
var normLUT = buildNormLUT()

// buildNormLUT evaluates, for every (channel, uint8) pair, exactly the official float32 operations:
// ClipToTensor's float32(v)/255 and then Normalize's (x - mean)/std, each an IEEE float32 operation with
// mean and std rounded from float64 to float32 as torch.tensor does.
func buildNormLUT() [3][256]float32 {
	var lut [3][256]float32
	for c := 0; c < 3; c++ {
		m := float32(mean[c])
		s := float32(std[c])
		for v := 0; v < 256; v++ {
			x := float32(v) / float32(255)
			x = float32(x - m)
			lut[c][v] = float32(x / s)
		}
	}
	return lut
}

// Normalize returns the model input value for uint8 value v in channel c (0=R, 1=G, 2=B):
// ((v/255) - mean[c]) / std[c] in float32 with the ImageNet mean (0.485, 0.456, 0.406) and std
// (0.229, 0.224, 0.225), bit-identical to the official ClipToTensor + Normalize.
// Out-of-range channels give 0.
func Normalize(c int, v uint8) float32 {
	if c < 0 || c > 2 {
		return 0
	}
	return normLUT[c][v]
}
