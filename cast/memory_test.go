package cast

import "testing"

func TestPeakBytes(t *testing.T) {
	const mib = 1 << 20
	base := DefaultBase()
	temporal := DemoConfig()
	temporal.Experts = "temporal"
	spatial := DemoConfig()
	spatial.Experts = "spatial"
	tests := []struct {
		name      string
		cfg       Config
		batch     int
		transient int64 // expected Transient, computed by hand from the dominant sub-layer
		fits128   bool  // whether Total is under 128 MiB
	}{
		// ViT-B/16, 16 frames: VideoMAE's joint attention over 8·196 = 1568 tokens dominates:
		// 6·1568·768 (q, k, v, qkv) + 2·12·1568² (scores, probs) float32s.
		{"base-ssv2", base, 1, 4 * (6*1568*768 + 2*12*1568*1568), false},
		{"base-ssv2 batch 2", base, 2, 2 * 4 * (6*1568*768 + 2*12*1568*1568), false},
		// demo (4 frames, D=32, 4 heads): VideoMAE's attention over 2·196 = 392 tokens, 6·392·32 + 2·4·392²
		// = 1,304,576, beats its MLP (2·392·128 = 100,352) and CLIP's attention (6·394·32 + 2·2·4·197²).
		{"demo", DemoConfig(), 1, 4 * (6*392*32 + 2*4*392*392), true},
		{"demo batch 0 counts as 1", DemoConfig(), 0, 4 * (6*392*32 + 2*4*392*392), true},
		// temporal-only ablation: no B-CAST, same VideoMAE attention.
		{"demo temporal", temporal, 1, 4 * (6*392*32 + 2*4*392*392), true},
		// spatial-only ablation: CLIP attention per frame, 2 frames of 197 tokens:
		// 6·394·32 + 2·2·4·197² = 75,648 + 620,944; its MLP 2·394·128 = 100,864 is smaller.
		{"demo spatial", spatial, 1, 4 * (6*394*32 + 2*2*4*197*197), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.cfg.Memory(tc.batch)
			params, _ := tc.cfg.ParamCounts()
			if m.Weights != 4*int64(params) {
				t.Errorf("Weights = %d, want 4·%d", m.Weights, params)
			}
			if m.Transient != tc.transient {
				t.Errorf("Transient = %d, want %d", m.Transient, tc.transient)
			}
			if m.Activations != m.Input+m.Streams+m.Transient || m.Total != m.Weights+m.Activations {
				t.Errorf("parts do not add up: %+v", m)
			}
			if got := tc.cfg.PeakBytes(tc.batch); got != m.Total {
				t.Errorf("PeakBytes = %d, want Memory().Total %d", got, m.Total)
			}
			if fits := m.Total < 128*mib; fits != tc.fits128 {
				t.Errorf("fits in 128 MiB = %v (total %.1f MiB), want %v", fits, float64(m.Total)/mib, tc.fits128)
			}
		})
	}
	// More clips never need less memory.
	for _, cfg := range []Config{base, DemoConfig()} {
		if a, b := cfg.PeakBytes(1), cfg.PeakBytes(4); b <= a {
			t.Errorf("PeakBytes(4) = %d is not above PeakBytes(1) = %d", b, a)
		}
	}
}
