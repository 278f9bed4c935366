// WLOAD of gemm.wgsl for float32 weights [K, N] or, transposed, [N, K].
if (transposed) { return W[wOff + j * K + k]; }
  return W[wOff + k * N + j];
