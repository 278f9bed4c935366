// Softmax over rows of n values, exp(x - max)/Σexp(x - max), one workgroup of 64 threads per row.
@group(0) @binding(0) var<storage, read> prm: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> OUT: array<f32>;

var<workgroup> red: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let rows = prm[0]; let n = prm[1];
  let row = wid.y * nwg.x + wid.x;
  if (row >= rows) { return; }
  let x0 = prm[2] + row * n;
  var m = -3.0e38;
  for (var i = li; i < n; i += 64u) { m = max(m, X[x0 + i]); }
  red[li] = m;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] = max(red[li], red[li + s]); }
    workgroupBarrier();
  }
  m = red[0];
  workgroupBarrier();
  var sum = 0.0;
  for (var i = li; i < n; i += 64u) { sum += exp(X[x0 + i] - m); }
  red[li] = sum;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] += red[li + s]; }
    workgroupBarrier();
  }
  let inv = 1.0 / red[0];
  for (var i = li; i < n; i += 64u) { OUT[row * n + i] = exp(X[x0 + i] - m) * inv; }
}
