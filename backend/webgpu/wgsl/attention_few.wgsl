// Attention of few keys in int8 programs (B-CAST's, fewer than 32: kernels.Int8FewKeys), as the CPU's direct
// path computes it (backend/kernels/attention_small.go), one thread per query row of one (batch, head):
//   - s_j = (Σ_d q_d·k_jd, d in order)·Scale + 0, m = max_j s_j;
//   - p_j = expx(s_j − m) for the ldk = Lk rounded up to 8 keys the CPU pads its rows to (a padded key's score
//     is −Inf: expx gives its clamp's ≈ 1.2e-38), and their canonical sum (one block: lane l = p_l + p_{l+16},
//     then the fixed pairwise tree);
//   - out_d = (Σ_{j<Lk} p_j·v_jd, j in order) · (1/sum).
// Every rounded operation as the CPU's (f32exact.wgsl). Parameter words: B, H, Lq, Lk, Scale, then Q's, K's and
// V's views (offset, batch, row and head strides), the output strides (batch, row, head), 0 (opq's).
@group(0) @binding(0) var<storage, read> prm: array<u32>;
@group(0) @binding(1) var<storage, read> Q: array<f32>;
@group(0) @binding(2) var<storage, read> Kb: array<f32>;
@group(0) @binding(3) var<storage, read> V: array<f32>;
@group(0) @binding(4) var<storage, read_write> OUT: array<f32>;

{{F32EXACT}}

const HD: u32 = {{HD}}u;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let Lq = prm[2]; let Lk = prm[3]; let scale = bitcast<f32>(prm[4]);
  zero = prm[20];
  let b = wid.z; let h = wid.y; let row = wid.x * 64u + li;
  if (row >= Lq) { return; } // no barriers below
  let qBase = prm[5] + b * prm[6] + row * prm[7] + h * prm[8];
  let kBase = prm[9] + b * prm[10] + h * prm[12]; let krs = prm[11];
  let vBase = prm[13] + b * prm[14] + h * prm[16]; let vrs = prm[15];
  let z = bitcast<f32>(zero); // 0, the padding key's bias
  var p: array<f32, 32>;
  var m = -0x1.fffffep+127f;
  for (var j = 0u; j < Lk; j++) {
    let k0 = kBase + j * krs;
    var s = opq(Q[qBase] * Kb[k0]);
    for (var d = 1u; d < HD; d++) { s = mad(Q[qBase + d], Kb[k0 + d], s); }
    s = opq(opq(s * scale) + z);
    p[j] = s;
    m = max(m, s);
  }
  let ldk = (Lk + 7u) & ~7u;
  for (var j = 0u; j < ldk; j++) {
    if (j < Lk) { p[j] = expx(opq(p[j] - m)); } else { p[j] = expx(EXP_LO); }
  }
  var lane: array<f32, 16>;
  for (var l = 0u; l < 16u; l++) {
    var v = z;
    if (l < ldk) { v = opq(v + p[l]); }
    if (l + 16u < ldk) { v = opq(v + p[l + 16u]); }
    lane[l] = v;
  }
  for (var k = 0u; k < 8u; k++) { lane[k] = opq(lane[2u * k] + lane[2u * k + 1u]); }
  for (var k = 0u; k < 4u; k++) { lane[k] = opq(lane[2u * k] + lane[2u * k + 1u]); }
  for (var k = 0u; k < 2u; k++) { lane[k] = opq(lane[2u * k] + lane[2u * k + 1u]); }
  let inv = divRN(1.0, opq(lane[0] + lane[1]));
  let o = b * prm[17] + row * prm[18] + h * prm[19];
  for (var d = 0u; d < HD; d++) {
    var acc = z;
    for (var j = 0u; j < Lk; j++) { acc = opq(acc + opq(p[j] * V[vBase + j * vrs + d])); }
    OUT[o + d] = opq(acc * inv);
  }
}
