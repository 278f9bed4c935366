// Fragment of gemm.wgsl and gemm_int8.wgsl (their EPILOGUE placeholder, after f32exact.wgsl): the epilogue (store), the CPU's (storeTile) operations in its order.
fn store(r: u32, c0: u32, v4: vec4<f32>, M: u32, N: u32) {
  if (r >= M) { return; }
  let act = prm[8]; let post = bitcast<f32>(prm[9]); let flags = prm[10];
  for (var j = 0u; j < 4u; j++) {
    let c = c0 + j;
    if (c >= N) { return; }
    var v = v4[j];
    if ((flags & 1u) != 0u) { v = opq(v + BIAS[prm[6] + c]); }
    if (act == 1u) { v = gelu_(v); }
    else if (act == 2u) { v = qgelu_(v); }
    if (post != 0.0 && post != 1.0) { v = opq(v * post); }
    if ((flags & 2u) != 0u) { v = opq(v + RES[prm[7] + r * N + c]); }
    OUT[r * N + c] = v;
  }
}
