// Causal grouped-query attention forward, flash style: an online softmax over the keys, so no
// T×S score matrix exists; the per-row log-sum-exp is saved for the backward.
//
// A workgroup owns 4 query rows of one kv head (consecutive (query position, head within the
// group) pairs, so decode still fills them with the group's heads) and carries them as the 4
// components of vec4s. Its invocations split the keys: invocation `lane` takes keys
// j ≡ lane (mod LANES), keeps its own running max, sum and output accumulator, and the lanes are
// merged at the end. Every K/V element an invocation loads is thus used for 4 rows and no two
// invocations load the same element. That is what lavapipe wants: it runs the 8 invocations as
// SIMD lanes but performs a storage load whose offset depends on a loop variable lane by lane,
// so a K/V row broadcast to all lanes (one query row per invocation) costs 8 loads for 1 use;
// this layout measured 1.4× (training) to 4× (decode) faster than that one.
//
// Layouts: q, out [B, T, Hq, D]; k, v [B, S, Hkv, D] ([B', S, Hkv, D] read at row kv_rows[b] with
// KV_ROWS); lse [B, T, Hq] (natural log, 0 for a row that sees no key). Query t sits at position kv_length − T + t and sees keys
// key_start[b] ≤ j ≤ that position with position − j < window.
struct Params {
  queries: u32,
  keys: u32,
  q_heads: u32,
  kv_heads: u32,
  kv_length: u32,
  // Keys a query sees, itself included (sliding-window layers); kv_length or more means all.
  window: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> key_start: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;
// With KV_ROWS, the row of k and v batch row b reads (a KV cache whose finished rows stay in place).
@group(0) @binding(7) var<storage, read> kv_rows: array<u32>;

// Head dim (a multiple of 4).
const D: u32 = 64u;
const D4: u32 = D / 4u;
// Invocations per workgroup, each taking every LANES-th key.
const LANES: u32 = 8u;
const KV_ROWS: bool = false;
// A finite "minus infinity", so max/exp arithmetic never meets inf − inf.
const NEG: f32 = -3.0e38;

var<workgroup> lane_max: array<vec4<f32>, LANES>;
var<workgroup> lane_sum: array<vec4<f32>, LANES>;
var<workgroup> lane_acc: array<vec4<f32>, LANES * D>;

@compute @workgroup_size(LANES)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let group = p.q_heads / p.kv_heads;
  let rows = p.queries * group;
  let b = wg.z;
  let g = wg.y;
  let first_pos = p.kv_length - p.queries;
  // Rows past the end repeat the last row (keeping loads in bounds) and are not stored.
  let rc = min(vec4<u32>(wg.x * 4u) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(rows - 1u));
  let t = rc / group;
  let row = (b * p.queries + t) * p.q_heads + g * group + rc % group;
  let pos = first_pos + t;
  // The earliest key any of the 4 rows sees (rows are in position order).
  let key_begin = max(key_start[b], select(0u, pos.x + 1u - p.window, pos.x + 1u > p.window));
  let key_end = pos.w + 1u;

  // qs[d] holds dimension d of the 4 rows, pre-scaled.
  var qs: array<vec4<f32>, D>;
  var acc: array<vec4<f32>, D>;
  // The loops over D inside the key loop are unrolled by the host (// unroll): lavapipe's NIR
  // leaves them rolled, and an index into a register array that is not a constant is a per-lane
  // access. The loops that run once per workgroup stay rolled: unrolled, their per-lane storage
  // accesses made a shader take tens of seconds to compile.
  for (var d4 = 0u; d4 < D4; d4++) {
    let rows_d = mat4x4<f32>(q[row.x * D4 + d4], q[row.y * D4 + d4], q[row.z * D4 + d4], q[row.w * D4 + d4]);
    let cols = transpose(rows_d) * p.scale;
    qs[4u * d4] = cols[0];
    qs[4u * d4 + 1u] = cols[1];
    qs[4u * d4 + 2u] = cols[2];
    qs[4u * d4 + 3u] = cols[3];
    acc[4u * d4] = vec4<f32>(0.0);
    acc[4u * d4 + 1u] = vec4<f32>(0.0);
    acc[4u * d4 + 2u] = vec4<f32>(0.0);
    acc[4u * d4 + 3u] = vec4<f32>(0.0);
  }
  var m = vec4<f32>(NEG);
  var l = vec4<f32>(0.0);
  var kv_b = b;
  if (KV_ROWS) { kv_b = kv_rows[b]; }
  let kv_row = kv_b * p.keys * p.kv_heads + g;

  for (var j0 = key_begin; j0 < key_end; j0 += LANES) {
    let j = j0 + lane;
    let visible = (vec4<u32>(j) <= pos) & (pos - vec4<u32>(j) < vec4<u32>(p.window));
    let kr = (kv_row + min(j, key_end - 1u) * p.kv_heads) * D4;
    var s = vec4<f32>(0.0);
    for (var d4 = 0u; d4 < D4; d4++) { // unroll
      let kk = k[kr + d4];
      s = fma(qs[4u * d4], vec4<f32>(kk.x), s);
      s = fma(qs[4u * d4 + 1u], vec4<f32>(kk.y), s);
      s = fma(qs[4u * d4 + 2u], vec4<f32>(kk.z), s);
      s = fma(qs[4u * d4 + 3u], vec4<f32>(kk.w), s);
    }
    let m_new = max(m, select(vec4<f32>(NEG), s, visible));
    let correction = exp(m - m_new);
    // Explicit zero: while a row has seen no key, m_new is NEG and exp(s − m_new) is not 0.
    let prob = select(vec4<f32>(0.0), exp(s - m_new), visible);
    l = fma(l, correction, prob);
    m = m_new;
    for (var d4 = 0u; d4 < D4; d4++) { // unroll
      let vv = v[kr + d4];
      acc[4u * d4] = fma(acc[4u * d4], correction, prob * vv.x);
      acc[4u * d4 + 1u] = fma(acc[4u * d4 + 1u], correction, prob * vv.y);
      acc[4u * d4 + 2u] = fma(acc[4u * d4 + 2u], correction, prob * vv.z);
      acc[4u * d4 + 3u] = fma(acc[4u * d4 + 3u], correction, prob * vv.w);
    }
  }

  // Merge the lanes' partial softmaxes: rescale each to the common max and add.
  lane_max[lane] = m;
  lane_sum[lane] = l;
  for (var d4 = 0u; d4 < D4; d4++) {
    lane_acc[(4u * d4) * LANES + lane] = acc[4u * d4];
    lane_acc[(4u * d4 + 1u) * LANES + lane] = acc[4u * d4 + 1u];
    lane_acc[(4u * d4 + 2u) * LANES + lane] = acc[4u * d4 + 2u];
    lane_acc[(4u * d4 + 3u) * LANES + lane] = acc[4u * d4 + 3u];
  }
  workgroupBarrier();
  var m_all = vec4<f32>(NEG);
  for (var i = 0u; i < LANES; i++) { m_all = max(m_all, lane_max[i]); }
  var weight: array<vec4<f32>, LANES>;
  var l_all = vec4<f32>(0.0);
  for (var i = 0u; i < LANES; i++) {
    weight[i] = exp(lane_max[i] - m_all);
    l_all = fma(lane_sum[i], weight[i], l_all);
  }
  // A row whose keys are all masked (left padding past its position) outputs 0, not NaN.
  let seen = l_all > vec4<f32>(0.0);
  let inv_l = select(vec4<f32>(0.0), 1.0 / l_all, seen);
  let stored = vec4<u32>(wg.x * 4u) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(rows);
  for (var d = lane; d < D; d += LANES) {
    var total = vec4<f32>(0.0);
    for (var i = 0u; i < LANES; i++) { total = fma(lane_acc[d * LANES + i], weight[i], total); }
    let o = total * inv_l;
    for (var c = 0u; c < 4u; c++) {
      if (stored[c]) { out[row[c] * D + d] = o[c]; }
    }
  }
  if (lane == 0u) {
    let log_sum = select(vec4<f32>(0.0), m_all + log(l_all), seen);
    for (var c = 0u; c < 4u; c++) {
      if (stored[c]) { lse[row[c]] = log_sum[c]; }
    }
  }
}
