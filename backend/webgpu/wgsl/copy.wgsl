// Strided copy of a block of up to 8 dimensions: OUT[dOff + Σ idx·ds] = X[sOff + Σ idx·ss] (views:
// transposes, slices, broadcasts, concatenation parts).
@group(0) @binding(0) var<storage, read> prm: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> OUT: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let total = prm[0]; let rank = prm[1];
  let i = (wid.y * nwg.x + wid.x) * 256u + li;
  if (i >= total) { return; }
  var rem = i;
  var s = prm[2]; var d = prm[3];
  for (var a = i32(rank) - 1; a >= 0; a--) {
    let dim = prm[4u + u32(a)];
    let idx = rem % dim;
    rem = rem / dim;
    s += idx * prm[12u + u32(a)];
    d += idx * prm[20u + u32(a)];
  }
  OUT[d] = X[s];
}
