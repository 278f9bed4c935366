// Fragment spliced in at the F32EXACT placeholder of the kernels of int8 programs: the CPU's float32 operations
// (backend/kernels/math_generic.go, exp_exact.go) in its order, so that on a GPU that rounds +, −, · and √
// correctly (SwiftShader does) an int8 model's outputs are the CPU's bits. Every rounded operation passes through
// opq, which xors the bits with zero, 0 read from a parameter word: no compiler can see through it, so none
// contracts a·b + c into a fused multiply-add, reassociates or simplifies (SwiftShader folds (x + c) − c to x).
// Division goes through divRN, since WGSL's division may be 2.5 ulp off and a compiler may turn it into a
// product with a reciprocal (SwiftShader does). Each kernel sets zero first.
var<private> zero: u32;
fn opq(x: f32) -> f32 { return bitcast<f32>(bitcast<u32>(x) ^ zero); }
fn mad(a: f32, b: f32, c: f32) -> f32 { return opq(opq(a * b) + c); } // a·b + c, each rounded

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

// fdiv is a/b rounded to nearest, ties to even, for any signs (divRN on the magnitudes).
fn fdiv(a: f32, b: f32) -> f32 {
  let s = (bitcast<u32>(a) ^ bitcast<u32>(b)) & 0x80000000u;
  return bitcast<f32>(bitcast<u32>(divRN(abs(a), abs(b))) | s);
}

// The float32 constants of the CPU's exp32, expOneExact, erf32 and tanh32, exactly.
const EXP_HI: f32 = 0x1.64p+6f;
const EXP_LO32: f32 = -0x1.ap+6f;
const EXP_LO: f32 = -0x1.5d589ep+6f;
const LOG2E: f32 = 0x1.715476p+0f;
const NEG_LN2_HI: f32 = -0x1.63p-1f;
const NEG_LN2_LO: f32 = 0x1.bd0106p-13f;
const EXP_P0: f32 = 0x1.a0d2cep-13f;
const EXP_P1: f32 = 0x1.6e879cp-10f;
const EXP_P2: f32 = 0x1.11121p-7f;
const EXP_P3: f32 = 0x1.555382p-5f;
const EXP_P4: f32 = 0x1.555554p-3f;
const EXP_P5: f32 = 0x1p-1f;
const ERF_P: f32 = 0x1.4f740ap-2f;
const ERF_A1: f32 = 0x1.04f20cp-2f;
const ERF_A2: f32 = -0x1.23531cp-2f;
const ERF_A3: f32 = 0x1.6be1c6p+0f;
const ERF_A4: f32 = -0x1.7401c6p+0f;
const ERF_A5: f32 = 0x1.0fb844p+0f;
const TANH_T0: f32 = -0x1.75e1d4p-8f;
const TANH_T1: f32 = 0x1.52269cp-6f;
const TANH_T2: f32 = -0x1.b83c5ap-5f;
const TANH_T3: f32 = 0x1.110726p-3f;
const TANH_T4: f32 = -0x1.555532p-2f;
const SQRT_HALF: f32 = 0x1.6a09e6p-1f;
const QGELU_K: f32 = -0x1.b3b646p+0f;

// expPoly is Cephes' exp of the reduced argument r: p·r² + (r + 1), p by Horner.
fn expPoly(r: f32) -> f32 {
  var p = mad(EXP_P0, r, EXP_P1);
  p = mad(p, r, EXP_P2);
  p = mad(p, r, EXP_P3);
  p = mad(p, r, EXP_P4);
  p = mad(p, r, EXP_P5);
  return opq(opq(p * opq(r * r)) + opq(r + 1.0));
}

// exp32 is the CPU's exp32: x clamped to [−104, 89], n = x·log2e rounded to even, r = n·(−ln2Hi) + x,
// r = n·(−ln2Lo) + r, then 2ⁿ as two factors.
fn exp32(x0: f32) -> f32 {
  let x = min(max(x0, EXP_LO32), EXP_HI);
  let n = round(opq(x * LOG2E));
  var r = mad(n, NEG_LN2_HI, x);
  r = mad(n, NEG_LN2_LO, r);
  let e = expPoly(r);
  let ni = i32(n); let n1 = ni >> 1u; let n2 = ni - n1;
  return opq(opq(e * bitcast<f32>(u32(n1 + 127) << 23u)) * bitcast<f32>(u32(n2 + 127) << 23u));
}

// expx is the CPU's expOneExact: exp(x) for x ≤ 0, x clamped at −87.33654, 2ⁿ as one factor.
fn expx(x0: f32) -> f32 {
  let x = select(x0, EXP_LO, x0 < EXP_LO);
  let n = round(opq(x * LOG2E));
  var r = mad(n, NEG_LN2_HI, x);
  r = mad(n, NEG_LN2_LO, r);
  return opq(expPoly(r) * bitcast<f32>(u32(i32(n) + 127) << 23u));
}

// withSignOf is y with x's sign bit ORed in (the CPU's withSignOf32).
fn withSignOf(y: f32, x: f32) -> f32 { return bitcast<f32>(bitcast<u32>(y) | (bitcast<u32>(x) & 0x80000000u)); }

// erf_ is the CPU's erf32 (Abramowitz–Stegun 7.1.26).
fn erf_(x: f32) -> f32 {
  let ax = abs(x);
  let t = divRN(1.0, opq(opq(ax * ERF_P) + 1.0));
  var p = mad(ERF_A5, t, ERF_A4);
  p = mad(p, t, ERF_A3);
  p = mad(p, t, ERF_A2);
  p = mad(p, t, ERF_A1);
  return withSignOf(opq(1.0 - opq(opq(p * t) * exp32(-opq(ax * ax)))), x);
}

// gelu_ is the CPU's gelu32: h·erf(x/√2) + h, h = x/2.
fn gelu_(x: f32) -> f32 {
  let h = opq(x * 0.5);
  return opq(opq(h * erf_(opq(x * SQRT_HALF))) + h);
}

// qgelu_ is the CPU's quickgelu32: x / (1 + exp(−1.702·x)).
fn qgelu_(x: f32) -> f32 { return fdiv(x, opq(1.0 + exp32(opq(x * QGELU_K)))); }

// logistic_ is the CPU's logistic32: 1 / (1 + exp(−x)).
fn logistic_(x: f32) -> f32 { return divRN(1.0, opq(1.0 + exp32(-x))); }

// tanh_ is the CPU's tanh32.
fn tanh_(x: f32) -> f32 {
  let ax = abs(x);
  if (ax < 0.625) {
    let z = opq(x * x);
    var p = mad(TANH_T0, z, TANH_T1);
    p = mad(p, z, TANH_T2);
    p = mad(p, z, TANH_T3);
    p = mad(p, z, TANH_T4);
    return opq(opq(opq(x * z) * p) + x);
  }
  return withSignOf(opq(1.0 - divRN(2.0, opq(exp32(opq(ax + ax)) + 1.0))), x);
}
