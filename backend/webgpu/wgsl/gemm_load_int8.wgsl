// WLOAD of gemm.wgsl for int8 weights [N, K], four to a u32 word, times the per-channel scale.
let idx = wOff + j * K + k;
  let word = bitcast<i32>(W[idx / 4u]);
  return f32(extractBits(word, (idx % 4u) * 8u, 8u)) * S[sOff + j];
