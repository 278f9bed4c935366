// Integer attention of int8 programs, step 2 of 2 (after attention_int8_quant.wgsl), the CPU's algorithm
// (runInt8 in backend/kernels/attention_int8.go) computed per query row. castgo's WebGPU executor fills this
// template's placeholders (names in double braces) for one head dimension (wgslAttentionInt8): the sizes, and
// lines unrolled over the HD4 vec4 registers of the row, as the float kernel is. One thread per query row of
// one (batch, head), keys staged TK at a time in workgroup memory:
//   - Q's row: int16 levels round-half-even(q·(qmaxQ/max|q|)), row scale max|q|/qmaxQ · Scale (quantizeA);
//   - pass 1: score_j = f32(Σ qlev·klev_j) · rs · s_k[j] (the int8 GEMM's order), m = max_j score_j (0 when
//     every score is -Inf);
//   - pass 2: the same scores again, p_j = expx(score_j − m) (expOneExact's operations, none fused), P's levels
//     round-half-even(p_j·(qmaxP/max p)), l = Σ levels, acc_d = Σ_j plev_j·vlev_jd (exact i32: qmaxP bounds it);
//   - out_d = f32(acc_d) · (1/f32(l)) · s_v[d] (pRowScale), NaN for a row that met a NaN score.
// Parameter words: B, H, Lq, Lk, Scale, Q view (offset, batch, row and head strides), output strides (batch,
// row, head), qmaxQ, qmaxP, 0 (opq's), NaN, then the scratch offsets of K's levels, K's scales, V's levels and
// V's scales.
@group(0) @binding(0) var<storage, read> prm: array<u32>;
@group(0) @binding(1) var<storage, read> Q: array<f32>;
@group(0) @binding(2) var<storage, read> S: array<i32>;
@group(0) @binding(3) var<storage, read_write> OUT: array<f32>;

const HD4: u32 = {{HD4}}u;
const TK: u32 = {{TK}}u;
var<workgroup> ks: array<array<vec4<i32>, HD4>, TK>;
var<workgroup> vs: array<array<vec4<i32>, HD4>, TK>;
var<workgroup> kss: array<f32, TK>;

{{QUANTIZE}}

// absBits4 is max |v| as bits: compared as integers, finite < Inf < NaN, so a NaN is kept by max.
fn absBits4(v: vec4<f32>) -> u32 {
  let a = bitcast<vec4<u32>>(v) & vec4<u32>(0x7fffffffu);
  return max(max(a.x, a.y), max(a.z, a.w));
}

fn isNaN(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }

fn ld4(p: u32) -> vec4<i32> { return vec4<i32>(S[p], S[p + 1u], S[p + 2u], S[p + 3u]); }

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let H = prm[1]; let Lq = prm[2]; let Lk = prm[3]; let scale = bitcast<f32>(prm[4]);
  let b = wid.z; let h = wid.y; let row = wid.x * 64u + li;
  let live = row < Lq;
  let qBase = prm[5] + b * prm[6] + min(row, Lq - 1u) * prm[7] + h * prm[8];
  let qmaxQ = bitcast<f32>(prm[12]); let qmaxP = bitcast<f32>(prm[13]);
  zero = prm[14];
  let bh = b * H + h;
  let kLev = prm[16] + bh * Lk * HD4 * 4u; let kSc = prm[17] + bh * Lk;
  let vLev = prm[18] + bh * Lk * HD4 * 4u; let vSc = prm[19] + bh * HD4 * 4u;
  // Q's row as int16 levels (f0…: its values; q0…: its levels)
  var mb = 0u;
{{QLOAD}}
  let qs = symScale(mb, qmaxQ);
  let rs = opq(qs.x * scale);
{{QLEVELS}}
  var nan = isNaN(rs);
  // pass 1: the largest score
  var mraw = -0x1.fffffep+127f;
  for (var j0 = 0u; j0 < Lk; j0 += TK) {
    for (var e = li; e < TK * HD4; e += 64u) {
      let jj = e / HD4; let d4 = e % HD4;
      var kv = vec4<i32>(0);
      if (j0 + jj < Lk) { kv = ld4(kLev + ((j0 + jj) * HD4 + d4) * 4u); }
      ks[jj][d4] = kv;
    }
    if (li < TK && j0 + li < Lk) { kss[li] = bitcast<f32>(S[kSc + j0 + li]); }
    workgroupBarrier();
    let cnt = min(TK, Lk - j0);
    for (var jj = 0u; jj < cnt; jj++) {
      let s = opq(opq(f32({{DOTK}}) * rs) * kss[jj]);
      mraw = max(mraw, s);
      nan = nan || isNaN(s);
    }
    workgroupBarrier();
  }
  var m = mraw;
  if (m <= -0x1.fffffep+127f) { m = 0.0; } // every score -Inf: P's levels are 0 and the outputs NaN, as on the CPU
  let ps = symScale(absBits(expx(opq(mraw - m))), qmaxP); // the largest p is exp(max score − m)
  // pass 2: P's levels and P·V
  var l = 0;
{{ACCDECL}}
  for (var j0 = 0u; j0 < Lk; j0 += TK) {
    for (var e = li; e < TK * HD4; e += 64u) {
      let jj = e / HD4; let d4 = e % HD4;
      var kv = vec4<i32>(0); var vv = vec4<i32>(0);
      if (j0 + jj < Lk) {
        let o = ((j0 + jj) * HD4 + d4) * 4u;
        kv = ld4(kLev + o); vv = ld4(vLev + o);
      }
      ks[jj][d4] = kv; vs[jj][d4] = vv;
    }
    if (li < TK && j0 + li < Lk) { kss[li] = bitcast<f32>(S[kSc + j0 + li]); }
    workgroupBarrier();
    let cnt = min(TK, Lk - j0);
    for (var jj = 0u; jj < cnt; jj++) {
      let s = opq(opq(f32({{DOTK}}) * rs) * kss[jj]);
      let lev = i32(round(opq(expx(opq(s - m)) * ps.y)));
      l += lev;
{{ACCUM}}
    }
    workgroupBarrier();
  }
  if (live) {
    var rl = divRN(1.0, f32(l));
    if (nan) { rl = bitcast<f32>(prm[15]); }
    let o = b * prm[9] + row * prm[10] + h * prm[11];
{{STORE}}
  }
}
