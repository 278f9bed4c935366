// Fragment spliced in instead of f32exact.wgsl in the kernels of float programs: the same functions with the GPU's own exp, tanh and division, and contraction allowed.
// A float program's GEMMs and attentions add in another order than the CPU's, so rounding each operation as the
// CPU does would buy no equality there and would cost time (f32exact's division is an integer long division).
var<private> zero: u32;
fn opq(x: f32) -> f32 { return x; }
fn mad(a: f32, b: f32, c: f32) -> f32 { return a * b + c; }
fn divRN(a: f32, b: f32) -> f32 { return a / b; }
fn fdiv(a: f32, b: f32) -> f32 { return a / b; }
fn exp32(x: f32) -> f32 { return exp(x); }

// erf_ is Abramowitz–Stegun 7.1.26, as the CPU's erf32, with the GPU's exp.
fn erf_(x: f32) -> f32 {
  let ax = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * ax);
  let p = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t;
  let y = 1.0 - p * exp(-ax * ax);
  return select(y, -y, x < 0.0);
}

fn gelu_(x: f32) -> f32 { let h = x * 0.5; return h * erf_(x * 0.70710678118654752) + h; }
fn qgelu_(x: f32) -> f32 { return x / (1.0 + exp(-1.702 * x)); }
fn logistic_(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
fn tanh_(x: f32) -> f32 { return tanh(x); }
