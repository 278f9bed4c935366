// Fragment of the int8 quantizing kernels (their QUANTIZE placeholder): scales as the CPU's symScale computes them.

// symScale returns the scale and inverse scale of symmetric quantization to ±qmax for values whose largest
// magnitude has the bits mb: (mx/qmax, qmax/mx), (0, 0) for 0 and (NaN, 0) for Inf or NaN.
fn symScale(mb: u32, qmax: f32) -> vec2<f32> {
  if (mb == 0u) { return vec2<f32>(0.0, 0.0); }
  if (mb >= 0x7f800000u) { return vec2<f32>(bitcast<f32>(mb | 0x7fc00000u), 0.0); }
  let mx = bitcast<f32>(mb);
  return vec2<f32>(divRN(mx, qmax), divRN(qmax, mx));
}

// absBits is |x| as bits: compared as integers, finite < Inf < NaN, so a NaN is kept by max.
fn absBits(x: f32) -> u32 { return bitcast<u32>(x) & 0x7fffffffu; }
