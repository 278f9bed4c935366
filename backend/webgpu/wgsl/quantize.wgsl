// Fragment of the int8 quantizing kernels (their QUANTIZE placeholder): scales as the CPU's symScale computes them.

// divRN returns a/b rounded to nearest, ties to even (the CPU's float32 division), for positive a and b,
// computed on the integer mantissas: WGSL's division may be 2.5 ulp off, and a compiler may turn it into a
// product with a reciprocal (SwiftShader does). Zero, subnormal or non-finite operands, and results out of the
// normal range, fall back to a / b.
fn divRN(a: f32, b: f32) -> f32 {
  let ab = bitcast<u32>(a); let bb = bitcast<u32>(b);
  let ea = i32(ab >> 23u); let eb = i32(bb >> 23u);
  if (ea == 0 || eb == 0 || ea >= 255 || eb >= 255) { return a / b; }
  let mb = (bb & 0x7fffffu) | 0x800000u;
  var r = (ab & 0x7fffffu) | 0x800000u;
  var e = ea - eb + 127;
  if (r < mb) { r = r << 1u; e = e - 1; }
  var q = 0u; // 24 quotient bits by long division; mb ≤ r < 2·mb on entry
  for (var i = 0; i < 24; i++) {
    q = q << 1u;
    if (r >= mb) { r = r - mb; q = q | 1u; }
    r = r << 1u;
  }
  if (r > mb || (r == mb && (q & 1u) == 1u)) { q = q + 1u; } // r is twice the remainder
  if (q == 0x1000000u) { q = 0x800000u; e = e + 1; }
  if (e < 1 || e > 254) { return a / b; }
  return bitcast<f32>((u32(e) << 23u) | (q & 0x7fffffu));
}

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
