// Integer GEMM of int8 weights, step 1 of 2 (gemm_int8.wgsl is step 2): the rows of A quantized as the CPU's
// int8 GEMM quantizes them (quantizeA, backend/kernels/gemm_int8.go): int16 levels round-half-even(a·(qmax/max|a|))
// with qmax = Int8QMax(K rounded up to even), and the row scale max|a|/qmax; a row with a non-finite value gets
// levels 0 and scale NaN. One thread per row; the levels go two to an i32 word (k even in the low half), rows of
// ⌈K/2⌉ words, then the row scales (f32 bits). The scales' functions are spliced in from
// quantize.wgsl. Parameter words: M, K, A's offset, qmax, the scratch offsets of the levels and
// of the row scales.
@group(0) @binding(0) var<storage, read> prm: array<u32>;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read_write> QA: array<i32>;

{{QUANTIZE}}

fn level(x: f32, inv: f32) -> u32 {
  if (inv == 0.0) { return 0u; }
  return u32(i32(round(x * inv))) & 0xffffu;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let M = prm[0]; let K = prm[1]; let aOff = prm[2]; let qmax = bitcast<f32>(prm[3]);
  let r = (wid.y * nwg.x + wid.x) * 64u + li;
  if (r >= M) { return; }
  let src = aOff + r * K;
  var mb = 0u;
  for (var k = 0u; k < K; k++) { mb = max(mb, absBits(A[src + k])); }
  let si = symScale(mb, qmax);
  let k2h = (K + 1u) / 2u;
  let dst = prm[4] + r * k2h;
  for (var p = 0u; p < k2h; p++) {
    let lo = level(A[src + 2u * p], si.y);
    var hi = 0u;
    if (2u * p + 1u < K) { hi = level(A[src + 2u * p + 1u], si.y); }
    QA[dst + p] = bitcast<i32>(lo | (hi << 16u));
  }
  QA[prm[5] + r] = bitcast<i32>(si.x);
}
