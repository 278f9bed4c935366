// Integer GEMM of int8 weights, step 2 of 2 (after gemm_int8_quant.wgsl), as the CPU's int8 GEMM computes it
// (backend/kernels/gemm_int8.go): out[i,j] = epilogue(f32(Σ_k qa[i,k]·w[j,k]) · rs[i] · sc[j]), the sum exact in
// i32 (qmax keeps it from overflowing), each product rounded (opq: no compiler reorders them), then the epilogue
// of gemm_epilogue.wgsl (spliced in at its placeholder; float arithmetic, as the CPU's). QA holds A's int16 levels
// two to a word and the row scales rs; W is the int8 weight [N, K], four to a word; S its per-output-channel
// scales. Tiles of 32×32 outputs, 8×8 threads of 4×4 each, as gemm.wgsl. Parameter words: M, K, N, QA's levels
// offset, W's offset, S's offset, bias offset, residual offset, activation, post scale, flags, 0 (opq's), QA's
// row scales offset.
@group(0) @binding(0) var<storage, read> prm: array<u32>;
@group(0) @binding(1) var<storage, read> QA: array<i32>;
@group(0) @binding(2) var<storage, read> W: array<u32>;
@group(0) @binding(3) var<storage, read> S: array<f32>;
@group(0) @binding(4) var<storage, read> BIAS: array<f32>;
@group(0) @binding(5) var<storage, read> RES: array<f32>;
@group(0) @binding(6) var<storage, read_write> OUT: array<f32>;

var<workgroup> As: array<array<vec4<i32>, 8>, 16>; // [k][row / 4], 4 rows per vec4
var<workgroup> Bs: array<array<vec4<i32>, 8>, 16>; // [k][col / 4], 4 columns per vec4

{{EPILOGUE}}

fn aAt(r: u32, k: u32, M: u32, K: u32) -> i32 {
  if (r >= M || k >= K) { return 0; }
  return extractBits(QA[prm[3] + r * ((K + 1u) / 2u) + k / 2u], (k % 2u) * 16u, 16u);
}

fn wAt(k: u32, j: u32, K: u32, N: u32) -> i32 {
  if (k >= K || j >= N) { return 0; }
  let idx = prm[4] + j * K + k;
  return extractBits(bitcast<i32>(W[idx / 4u]), (idx % 4u) * 8u, 8u);
}

// deq is f32(acc)·rs[r]·sc[c…] for the 4 columns from c (those past N are 0).
fn deq(acc: vec4<i32>, r: u32, c: u32, M: u32, N: u32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  if (r >= M) { return v; }
  let rs = bitcast<f32>(QA[prm[12] + r]);
  for (var j = 0u; j < 4u; j++) {
    if (c + j < N) { v[j] = opq(opq(f32(acc[j]) * rs) * S[prm[5] + c + j]); }
  }
  return v;
}

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let M = prm[0]; let K = prm[1]; let N = prm[2];
  zero = prm[11];
  let row0 = wid.y * 32u; let col0 = wid.x * 32u;
  var acc0 = vec4<i32>(0); var acc1 = vec4<i32>(0); var acc2 = vec4<i32>(0); var acc3 = vec4<i32>(0);
  for (var k0 = 0u; k0 < K; k0 += 16u) {
    for (var t = 0u; t < 2u; t++) {
      let e = li + t * 64u; // 128 vec4 per tile
      let kk = e % 16u; let q = e / 16u;
      let r = row0 + q * 4u; let gk = k0 + kk;
      As[kk][q] = vec4<i32>(aAt(r, gk, M, K), aAt(r + 1u, gk, M, K), aAt(r + 2u, gk, M, K), aAt(r + 3u, gk, M, K));
      let c = col0 + q * 4u;
      Bs[kk][q] = vec4<i32>(wAt(gk, c, K, N), wAt(gk, c + 1u, K, N), wAt(gk, c + 2u, K, N), wAt(gk, c + 3u, K, N));
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      let a = As[kk][lid.y];
      let b = Bs[kk][lid.x];
      acc0 += a.x * b;
      acc1 += a.y * b;
      acc2 += a.z * b;
      acc3 += a.w * b;
    }
    workgroupBarrier();
  }
  let r = row0 + lid.y * 4u; let c = col0 + lid.x * 4u;
  store(r, c, deq(acc0, r, c, M, N), M, N);
  store(r + 1u, c, deq(acc1, r + 1u, c, M, N), M, N);
  store(r + 2u, c, deq(acc2, r + 2u, c, M, N), M, N);
  store(r + 3u, c, deq(acc3, r + 3u, c, M, N), M, N);
}
