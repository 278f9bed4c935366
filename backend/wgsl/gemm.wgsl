// GEMM with a weight operand and a fused epilogue: out[i,j] = res[i,j] + post·act(Σ_k a[i,k]·W[k,j] + bias[j]).
// W is float32 ([K,N], or [N,K] when transposed) or, in the int8 variant, int8 [N,K] packed four to a word
// and dequantized here with its per-output-channel scale. Tiles of 32×32 outputs, 8×8 threads of 4×4 each.
@group(0) @binding(0) var<storage, read> prm: array<u32>;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> W: array<WTYPE>;
@group(0) @binding(3) var<storage, read> S: array<f32>;
@group(0) @binding(4) var<storage, read> BIAS: array<f32>;
@group(0) @binding(5) var<storage, read> RES: array<f32>;
@group(0) @binding(6) var<storage, read_write> OUT: array<f32>;

var<workgroup> As: array<array<f32, 32>, 16>;
var<workgroup> Bs: array<array<f32, 32>, 16>;

fn weight(k: u32, j: u32, K: u32, N: u32, wOff: u32, sOff: u32, transposed: bool) -> f32 {
  WLOAD
}

fn erf_(x: f32) -> f32 {
  let ax = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * ax);
  let p = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t;
  let y = 1.0 - p * exp(-ax * ax);
  return select(y, -y, x < 0.0);
}

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let M = prm[0]; let K = prm[1]; let N = prm[2];
  let aOff = prm[3]; let wOff = prm[4]; let sOff = prm[5]; let bOff = prm[6]; let rOff = prm[7];
  let act = prm[8]; let post = bitcast<f32>(prm[9]); let flags = prm[10];
  let transposed = (flags & 4u) != 0u;
  let row0 = wid.y * 32u; let col0 = wid.x * 32u;
  var acc: array<array<f32, 4>, 4>;
  for (var k0 = 0u; k0 < K; k0 += 16u) {
    for (var t = 0u; t < 8u; t++) {
      let e = li + t * 64u;
      let r = e / 16u; let kk = e % 16u;
      let gr = row0 + r; let gk = k0 + kk;
      var v = 0.0;
      if (gr < M && gk < K) { v = A[aOff + gr * K + gk]; }
      As[kk][r] = v;
    }
    for (var t = 0u; t < 8u; t++) {
      let e = li + t * 64u;
      var kk: u32; var c: u32;
      if (transposed) { c = e / 16u; kk = e % 16u; } else { kk = e / 32u; c = e % 32u; }
      let gk = k0 + kk; let gc = col0 + c;
      var v = 0.0;
      if (gk < K && gc < N) { v = weight(gk, gc, K, N, wOff, sOff, transposed); }
      Bs[kk][c] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      var a: array<f32, 4>; var b: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) { a[i] = As[kk][lid.y * 4u + i]; b[i] = Bs[kk][lid.x * 4u + i]; }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { acc[i][j] = fma(a[i], b[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let r = row0 + lid.y * 4u + i;
    if (r >= M) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let c = col0 + lid.x * 4u + j;
      if (c >= N) { continue; }
      var v = acc[i][j];
      if ((flags & 1u) != 0u) { v = v + BIAS[bOff + c]; }
      if (act == 1u) { v = 0.5 * v * (1.0 + erf_(v * 0.70710678118654752)); }
      else if (act == 2u) { v = v / (1.0 + exp(-1.702 * v)); }
      if (post != 0.0 && post != 1.0) { v = v * post; }
      if ((flags & 2u) != 0u) { v = v + RES[rOff + r * N + c]; }
      OUT[r * N + c] = v;
    }
  }
}
