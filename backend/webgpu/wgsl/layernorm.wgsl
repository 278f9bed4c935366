// Layer norm over rows of n values, (x−μ)/√(σ²+eps)·γ + β, one workgroup of 64 threads per row, as the CPU
// computes it (backend/kernels: layerNormRow): μ and σ² are canonical sums (vsumGeneric) divided by n — blocks of
// 128 values, value i of a block added to lane i mod 16 in order, each block's 16 lanes added by a fixed pairwise
// tree, the block sums in order — here four blocks at a time, a thread per lane; then 1/√(σ²+eps) and
// ((x−μ)·inv)·γ + β, every operation rounded as the CPU's (f32exact.wgsl). Parameter words: rows, n, X's
// offset, γ's offset, β's offset, eps, 0 (opq's).
@group(0) @binding(0) var<storage, read> prm: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> G: array<f32>;
@group(0) @binding(3) var<storage, read> Bt: array<f32>;
@group(0) @binding(4) var<storage, read_write> OUT: array<f32>;

{{F32EXACT}}

var<workgroup> red: array<f32, 64>;
var<workgroup> result: f32;

// tree16 adds the 16 lanes red[o…o+15] pairwise, as the CPU's tree16.
fn tree16(o: u32) -> f32 {
  var t: array<f32, 8>;
  for (var k = 0u; k < 8u; k++) { t[k] = opq(red[o + 2u * k] + red[o + 2u * k + 1u]); }
  for (var k = 0u; k < 4u; k++) { t[k] = opq(t[2u * k] + t[2u * k + 1u]); }
  for (var k = 0u; k < 2u; k++) { t[k] = opq(t[2u * k] + t[2u * k + 1u]); }
  return opq(t[0] + t[1]);
}

// canonSum returns, in every thread, the canonical sum of the row's values x0…x0+n−1, or of their squared
// deviations from mean when sq.
fn canonSum(li: u32, x0: u32, n: u32, sq: bool, mean: f32) -> f32 {
  let nb = (n + 127u) / 128u;
  var total = 0.0;
  let lane = li % 16u;
  for (var b0 = 0u; b0 < nb; b0 += 4u) {
    let b = b0 + li / 16u;
    var s = 0.0;
    if (b < nb) {
      let end = min(n, b * 128u + 128u);
      for (var i = b * 128u + lane; i < end; i += 16u) {
        var v = X[x0 + i];
        if (sq) { let d = opq(v - mean); v = opq(d * d); }
        s = opq(s + v);
      }
    }
    red[li] = s;
    workgroupBarrier();
    if (li == 0u) {
      for (var k = 0u; k < 4u; k++) {
        if (b0 + k < nb) { total = opq(total + tree16(16u * k)); }
      }
    }
    workgroupBarrier();
  }
  if (li == 0u) { result = total; }
  workgroupBarrier();
  let r = result;
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let rows = prm[0]; let n = prm[1];
  let row = wid.y * nwg.x + wid.x;
  if (row >= rows) { return; } // uniform across the workgroup
  zero = prm[6];
  let x0 = prm[2] + row * n; let gOff = prm[3]; let bOff = prm[4]; let eps = bitcast<f32>(prm[5]);
  let nf = f32(n);
  let mean = fdiv(canonSum(li, x0, n, false, 0.0), nf);
  let variance = fdiv(canonSum(li, x0, n, true, mean), nf);
  let inv = divRN(1.0, opq(sqrt(opq(variance + eps))));
  for (var i = li; i < n; i += 64u) {
    OUT[row * n + i] = opq(opq(opq(opq(X[x0 + i] - mean) * inv) * G[gOff + i]) + Bt[bOff + i]);
  }
}
