// Layer norm over rows of n values: (x-μ)/√(σ²+eps)·γ + β, one workgroup of 64 threads per row.
@group(0) @binding(0) var<storage, read> prm: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> G: array<f32>;
@group(0) @binding(3) var<storage, read> Bt: array<f32>;
@group(0) @binding(4) var<storage, read_write> OUT: array<f32>;

var<workgroup> red: array<f32, 64>;

fn rowSum(li: u32, v: f32) -> f32 {
  red[li] = v;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] += red[li + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let rows = prm[0]; let n = prm[1];
  let row = wid.y * nwg.x + wid.x;
  if (row >= rows) { return; } // uniform across the workgroup
  let x0 = prm[2] + row * n; let gOff = prm[3]; let bOff = prm[4]; let eps = bitcast<f32>(prm[5]);
  var s = 0.0;
  for (var i = li; i < n; i += 64u) { s += X[x0 + i]; }
  let mean = rowSum(li, s) / f32(n);
  var s2 = 0.0;
  for (var i = li; i < n; i += 64u) { let d = X[x0 + i] - mean; s2 += d * d; }
  let variance = rowSum(li, s2) / f32(n);
  let inv = 1.0 / sqrt(variance + eps);
  for (var i = li; i < n; i += 64u) {
    OUT[row * n + i] = (X[x0 + i] - mean) * inv * G[gOff + i] + Bt[bOff + i];
  }
}
