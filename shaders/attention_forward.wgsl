// Causal grouped-query attention forward, flash style: scores are computed block by block with an
// online softmax, so no T×S matrix exists. Each invocation owns one query row and keeps it and its
// output accumulator in registers; the rows of a workgroup all read the same kv head, so every K/V
// load is shared by the whole workgroup (on lavapipe a uniform load, on GPUs a broadcast).
// Rows of a workgroup enumerate (query position, head within the kv group) pairs, so the decode
// case (one query) still fills a workgroup with the group's query heads.
// Layouts: q, out [B, T, Hq, D]; k, v [B, S, Hkv, D]; lse [B, T, Hq] (natural log, 0 for a row
// that sees no key). Query t sits at position kv_length - T + t and sees keys
// key_start[b] <= j <= that position.
struct Params {
  queries: u32,
  keys: u32,
  q_heads: u32,
  kv_heads: u32,
  kv_length: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> key_start: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;

// Head dim / 4.
const D4: u32 = 16u;
// Query rows per workgroup, one per invocation.
const ROWS: u32 = 8u;
// Keys scored before each softmax rescale: larger blocks rescale the accumulator less often.
const BK: u32 = 16u;
// A finite "minus infinity", so max/exp arithmetic never meets inf - inf.
const NEG: f32 = -3.0e38;

@compute @workgroup_size(ROWS)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let group = p.q_heads / p.kv_heads;
  let rows = p.queries * group;
  let b = wg.z;
  let g = wg.y;
  let first_row = wg.x * ROWS;
  let r = first_row + lane;
  // Lanes past the end redo the last row (keeps loads in bounds) and skip the store.
  let rc = min(r, rows - 1u);
  let t = rc / group;
  let row = (b * p.queries + t) * p.q_heads + g * group + rc % group;
  let first_pos = p.kv_length - p.queries;
  let pos = first_pos + t;
  let key_begin = key_start[b];
  // One past the last key any row of this workgroup sees; uniform, so the loop does not diverge.
  let key_end = first_pos + (min(first_row + ROWS, rows) - 1u) / group + 1u;

  var qs: array<vec4<f32>, D4>;
  var acc: array<vec4<f32>, D4>;
  for (var d = 0u; d < D4; d++) {
    qs[d] = q[row * D4 + d] * p.scale;
    acc[d] = vec4<f32>(0.0);
  }
  var m = NEG;
  var l = 0.0;
  let kv_base = b * p.keys * p.kv_heads + g;

  for (var j0 = key_begin; j0 < key_end; j0 += BK) {
    var s: array<f32, BK>;
    var block_max = m;
    for (var c = 0u; c < BK; c++) {
      let j = min(j0 + c, key_end - 1u);
      let kr = (kv_base + j * p.kv_heads) * D4;
      var dot4 = vec4<f32>(0.0);
      for (var d = 0u; d < D4; d++) { dot4 = fma(qs[d], k[kr + d], dot4); }
      let valid = j0 + c <= pos;
      s[c] = select(NEG, dot4.x + dot4.y + dot4.z + dot4.w, valid);
      block_max = max(block_max, s[c]);
    }
    let correction = exp(m - block_max);
    l *= correction;
    for (var d = 0u; d < D4; d++) { acc[d] *= correction; }
    for (var c = 0u; c < BK; c++) {
      // Explicit zero: while every key so far is masked, block_max is NEG and exp(0) would be 1.
      let prob = select(0.0, exp(s[c] - block_max), j0 + c <= pos);
      l += prob;
      let vr = (kv_base + min(j0 + c, key_end - 1u) * p.kv_heads) * D4;
      for (var d = 0u; d < D4; d++) { acc[d] = fma(vec4<f32>(prob), v[vr + d], acc[d]); }
    }
    m = block_max;
  }

  if (r >= rows) { return; }
  // A row whose keys are all masked (left padding past its position) outputs 0, not NaN.
  let inv_l = select(0.0, 1.0 / l, l > 0.0);
  for (var d = 0u; d < D4; d++) { out[row * D4 + d] = acc[d] * inv_l; }
  lse[row] = select(0.0, m + log(l), l > 0.0);
}
