// Reduction (sum, max or min) over some axes: one thread per output value; the kept and reduced axes are
// given with their input strides (up to 8 of each).
@group(0) @binding(0) var<storage, read> prm: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> OUT: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let total = prm[0]; let keptRank = prm[1]; let redRank = prm[2]; let redTotal = prm[3]; let op = prm[5];
  let i = (wid.y * nwg.x + wid.x) * 256u + li;
  if (i >= total) { return; }
  var rem = i;
  var base = prm[4];
  for (var a = i32(keptRank) - 1; a >= 0; a--) {
    let dim = prm[6u + u32(a)];
    base += (rem % dim) * prm[14u + u32(a)];
    rem = rem / dim;
  }
  var acc = 0.0;
  if (op == 1u) { acc = -3.4028234e38; } else if (op == 2u) { acc = 3.4028234e38; }
  for (var r = 0u; r < redTotal; r++) {
    var rr = r;
    var p = base;
    for (var a = i32(redRank) - 1; a >= 0; a--) {
      let dim = prm[22u + u32(a)];
      p += (rr % dim) * prm[30u + u32(a)];
      rr = rr / dim;
    }
    let v = X[p];
    if (op == 0u) { acc += v; } else if (op == 1u) { acc = max(acc, v); } else { acc = min(acc, v); }
  }
  OUT[i] = acc;
}
