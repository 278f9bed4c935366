// GEMM with a float32 weight operand and a fused epilogue: out[i,j] = res[i,j] + post·act(Σ_k a[i,k]·W[k,j] +
// bias[j]). W is [K,N], or [N,K] when transposed (int8 weights take gemm_int8.wgsl). Tiles of 32×32 outputs, 8×8
// threads of 4×4 each, held in four vec4 accumulators (no private arrays: indexed private memory is slow on CPU
// implementations). The epilogue is spliced in from gemm_epilogue.wgsl.
@group(0) @binding(0) var<storage, read> prm: array<u32>;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> W: array<f32>;
@group(0) @binding(3) var<storage, read> S: array<f32>;
@group(0) @binding(4) var<storage, read> BIAS: array<f32>;
@group(0) @binding(5) var<storage, read> RES: array<f32>;
@group(0) @binding(6) var<storage, read_write> OUT: array<f32>;

var<workgroup> As: array<array<vec4<f32>, 8>, 16>; // [k][row / 4], 4 rows per vec4
var<workgroup> Bs: array<array<vec4<f32>, 8>, 16>; // [k][col / 4], 4 columns per vec4

fn weight(k: u32, j: u32, K: u32, N: u32, wOff: u32, sOff: u32, transposed: bool) -> f32 {
  if (transposed) { return W[wOff + j * K + k]; }
  return W[wOff + k * N + j];
}

{{EPILOGUE}}

fn aAt(r: u32, k: u32, M: u32, K: u32, aOff: u32) -> f32 {
  if (r < M && k < K) { return A[aOff + r * K + k]; }
  return 0.0;
}

fn wAt(k: u32, j: u32, K: u32, N: u32, wOff: u32, sOff: u32, transposed: bool) -> f32 {
  if (k < K && j < N) { return weight(k, j, K, N, wOff, sOff, transposed); }
  return 0.0;
}

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let M = prm[0]; let K = prm[1]; let N = prm[2];
  let aOff = prm[3]; let wOff = prm[4]; let sOff = prm[5];
  zero = prm[11];
  let transposed = (prm[10] & 4u) != 0u;
  let row0 = wid.y * 32u; let col0 = wid.x * 32u;
  var acc0 = vec4<f32>(0.0); var acc1 = vec4<f32>(0.0); var acc2 = vec4<f32>(0.0); var acc3 = vec4<f32>(0.0);
  for (var k0 = 0u; k0 < K; k0 += 16u) {
    for (var t = 0u; t < 2u; t++) {
      let e = li + t * 64u; // 128 vec4 per tile
      let kk = e % 16u; let q = e / 16u;
      let r = row0 + q * 4u; let gk = k0 + kk;
      As[kk][q] = vec4<f32>(aAt(r, gk, M, K, aOff), aAt(r + 1u, gk, M, K, aOff), aAt(r + 2u, gk, M, K, aOff), aAt(r + 3u, gk, M, K, aOff));
      let c = col0 + q * 4u;
      Bs[kk][q] = vec4<f32>(wAt(gk, c, K, N, wOff, sOff, transposed), wAt(gk, c + 1u, K, N, wOff, sOff, transposed),
        wAt(gk, c + 2u, K, N, wOff, sOff, transposed), wAt(gk, c + 3u, K, N, wOff, sOff, transposed));
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      let a = As[kk][lid.y];
      let b = Bs[kk][lid.x];
      acc0 = fma(vec4<f32>(a.x), b, acc0);
      acc1 = fma(vec4<f32>(a.y), b, acc1);
      acc2 = fma(vec4<f32>(a.z), b, acc2);
      acc3 = fma(vec4<f32>(a.w), b, acc3);
    }
    workgroupBarrier();
  }
  let r = row0 + lid.y * 4u; let c = col0 + lid.x * 4u;
  store(r, c, acc0, M, N);
  store(r + 1u, c, acc1, M, N);
  store(r + 2u, c, acc2, M, N);
  store(r + 3u, c, acc3, M, N);
}
