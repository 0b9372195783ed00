// Causal grouped-query attention forward for many query rows (training, prefill): the rows split
// across the lanes and every lane walks the same keys, read through uniform windows.
//
// attention_forward.wgsl splits the keys across its lanes, so every K/V value is a storage load
// of its own lane (on lavapipe a branchy loop over the lanes) and feeds that lane's 4 rows. Here a
// workgroup owns 4·LANES query rows of one kv head, 4 per lane as vec4 components (consecutive
// (query position, head within the group) pairs), and takes key after key together: K and V come
// through uniform bindings, loaded by lane 0 and broadcast (SUBGROUPS), so one load feeds
// 4·LANES rows. This measured 3–4× faster than attention_forward.wgsl at B = 4, T = 170–256.
//
// A uniform binding holds at most 64 KiB: a window of keys of one batch row (all kv heads). The
// host dispatches once per (batch row, window), in key order. A workgroup carries its rows'
// online softmax (running max, sum, output accumulator) from one window to the next in `state`;
// the last window writes the output and the log-sum-exp.
//
// Layouts as attention_forward.wgsl: q, out [B, T, Hq, D]; k, v [B, S, Hkv, D]; lse [B, T, Hq].
// Query t sits at position kv_length − T + t and sees keys key_start[b] ≤ j ≤ that position with
// position − j < window. Dispatch: x over blocks of 4·LANES rows, y over kv heads.
struct Params {
  queries: u32,
  keys: u32,
  q_heads: u32,
  kv_heads: u32,
  kv_length: u32,
  window: u32,
  // This dispatch's batch row and keys [key_lo, key_hi).
  batch: u32,
  key_lo: u32,
  key_hi: u32,
  // Element i (a vec4) of k is k_window[i + k_shift] (likewise v): the tensor's offset in its
  // buffer minus the window's, in vec4s, modulo 2^32 (u32 sums wrap).
  k_shift: u32,
  v_shift: u32,
  // Whether this is the batch row's first window (no state to read) and last (write the output).
  first: u32,
  last: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> k_window: array<vec4<f32>, K_WINDOW>;
@group(0) @binding(3) var<uniform> v_window: array<vec4<f32>, V_WINDOW>;
@group(0) @binding(4) var<storage, read> key_start: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;
// Per lane (4 rows): running max, sum, then the D accumulators, each a vec4 over the rows.
@group(0) @binding(7) var<storage, read_write> state: array<vec4<f32>>;

// Head dim (a multiple of 4).
const D: u32 = 64u;
const D4: u32 = D / 4u;
const LANES: u32 = 8u;
// vec4s in k's and v's uniform windows (byte size / 16; the host binds exactly that many bytes).
const K_WINDOW: u32 = 4096u;
const V_WINDOW: u32 = 4096u;
const SUBGROUPS: bool = true;
// A finite "minus infinity", so max/exp arithmetic never meets inf − inf.
const NEG: f32 = -3.0e38;

/** A value every lane loaded from the same address, as lane 0 loaded it (see matmul_broadcast.wgsl). */
fn from_lane0(x: vec4<f32>) -> vec4<f32> {
  if (SUBGROUPS) { return subgroupBroadcast(x, 0u); }
  return x;
}

@compute @workgroup_size(LANES)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let group = p.q_heads / p.kv_heads;
  let rows = p.queries * group;
  let b = p.batch;
  let g = wg.y;
  let first_pos = p.kv_length - p.queries;
  let block0 = wg.x * 4u * LANES;
  let slot = block0 + 4u * lane;
  // Rows past the end repeat the last row (keeping loads in bounds) and are not stored.
  let rc = min(vec4<u32>(slot) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(rows - 1u));
  let t = rc / group;
  let row = (b * p.queries + t) * p.q_heads + g * group + rc % group;
  let pos = first_pos + t;
  // The keys of this window that any of the workgroup's rows sees (rows are in position order).
  let block_first = first_pos + block0 / group;
  let block_last = first_pos + (min(block0 + 4u * LANES, rows) - 1u) / group;
  let window_begin = select(0u, block_first + 1u - p.window, block_first + 1u > p.window);
  let key_begin = max(max(key_start[b], p.key_lo), window_begin);
  let key_end = min(p.key_hi, block_last + 1u);
  if (key_begin >= key_end && p.first == 0u && p.last == 0u) { return; }

  // qs[d] holds dimension d of the 4 rows, pre-scaled.
  var qs: array<vec4<f32>, D>;
  var acc: array<vec4<f32>, D>;
  var m = vec4<f32>(NEG);
  var l = vec4<f32>(0.0);
  let lanes_per_head = (rows + 4u * LANES - 1u) / (4u * LANES) * LANES;
  let state_at = ((b * p.kv_heads + g) * lanes_per_head + slot / 4u) * (D + 2u);
  for (var d4 = 0u; d4 < D4; d4++) {
    let cols = transpose(mat4x4<f32>(q[row.x * D4 + d4], q[row.y * D4 + d4], q[row.z * D4 + d4], q[row.w * D4 + d4])) * p.scale;
    for (var i = 0u; i < 4u; i++) {
      qs[4u * d4 + i] = cols[i];
      acc[4u * d4 + i] = vec4<f32>(0.0);
    }
  }
  if (p.first == 0u) {
    m = state[state_at];
    l = state[state_at + 1u];
    for (var d = 0u; d < D; d++) {
      acc[d] = state[state_at + 2u + d];
    }
  }

  let key_stride = p.kv_heads * D4;
  let head_at = (b * p.keys * p.kv_heads + g) * D4;
  for (var j = key_begin; j < key_end; j++) {
    let visible = (vec4<u32>(j) <= pos) & (pos - vec4<u32>(j) < vec4<u32>(p.window));
    let at = head_at + j * key_stride;
    var s = vec4<f32>(0.0);
    for (var d4 = 0u; d4 < D4; d4++) { // unroll
      let kk = from_lane0(k_window[at + d4 + p.k_shift]);
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
      let vv = from_lane0(v_window[at + d4 + p.v_shift]);
      acc[4u * d4] = fma(acc[4u * d4], correction, prob * vv.x);
      acc[4u * d4 + 1u] = fma(acc[4u * d4 + 1u], correction, prob * vv.y);
      acc[4u * d4 + 2u] = fma(acc[4u * d4 + 2u], correction, prob * vv.z);
      acc[4u * d4 + 3u] = fma(acc[4u * d4 + 3u], correction, prob * vv.w);
    }
  }

  if (p.last == 0u) {
    state[state_at] = m;
    state[state_at + 1u] = l;
    for (var d = 0u; d < D; d++) {
      state[state_at + 2u + d] = acc[d];
    }
    return;
  }
  // A row whose keys are all masked (left padding past its position) outputs 0, not NaN.
  let seen = l > vec4<f32>(0.0);
  let inv_l = select(vec4<f32>(0.0), 1.0 / l, seen);
  let log_sum = select(vec4<f32>(0.0), m + log(l), seen);
  let stored = vec4<u32>(slot) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(rows);
  for (var c = 0u; c < 4u; c++) {
    if (stored[c]) {
      for (var d = 0u; d < D; d++) {
        out[row[c] * D + d] = acc[d][c] * inv_l[c];
      }
      lse[row[c]] = log_sum[c];
    }
  }
}
