// Causal grouped-query attention backward, query side, for many query rows: the dQ pass of
// attention_backward_query.wgsl laid out as attention_forward_rows.wgsl. A workgroup owns 4·LANES
// query rows of one kv head (4 per lane, as vec4 components) and walks one window of keys, K and
// V read through uniform bindings by lane 0. It recomputes P_ij = exp(scale · q_i·k_j − lse_i)
// and adds this window's part of
//   dq_i = scale · Σ_j P_ij (dO_i·v_j − δ_i) k_j,   δ_i = dO_i·O_i
// to grad_q, which the host zeroes first; the first window's dispatch also writes δ for the
// key-side pass. Dispatched once per (batch row, window of keys); masking is the forward's.
struct Params {
  queries: u32,
  keys: u32,
  q_heads: u32,
  kv_heads: u32,
  kv_length: u32,
  window: u32,
  batch: u32,
  key_lo: u32,
  key_hi: u32,
  // Element i (a vec4) of k is k_window[i + k_shift], modulo 2^32 (likewise v).
  k_shift: u32,
  v_shift: u32,
  first: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> k_window: array<vec4<f32>, K_WINDOW>;
@group(0) @binding(3) var<uniform> v_window: array<vec4<f32>, V_WINDOW>;
@group(0) @binding(4) var<storage, read> key_start: array<u32>;
@group(0) @binding(5) var<storage, read> out: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> grad_out: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> lse: array<f32>;
@group(0) @binding(8) var<storage, read_write> grad_q: array<f32>;
@group(0) @binding(9) var<storage, read_write> delta: array<f32>;

const D: u32 = 64u;
const D4: u32 = D / 4u;
const LANES: u32 = 8u;
const K_WINDOW: u32 = 4096u;
const V_WINDOW: u32 = 4096u;
const SUBGROUPS: bool = true;

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
  let rc = min(vec4<u32>(slot) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(rows - 1u));
  let t = rc / group;
  let row = (b * p.queries + t) * p.q_heads + g * group + rc % group;
  let pos = first_pos + t;
  let stored = vec4<u32>(slot) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(rows);
  let block_first = first_pos + block0 / group;
  let block_last = first_pos + (min(block0 + 4u * LANES, rows) - 1u) / group;
  let window_begin = select(0u, block_first + 1u - p.window, block_first + 1u > p.window);
  let key_begin = max(max(key_start[b], p.key_lo), window_begin);
  let key_end = min(p.key_hi, block_last + 1u);
  if (key_begin >= key_end && p.first == 0u) { return; }

  // Component c of qs[d] / dos[d] is dimension d of row c; qs pre-scaled.
  var qs: array<vec4<f32>, D>;
  var dos: array<vec4<f32>, D>;
  var dq: array<vec4<f32>, D>;
  var row_delta = vec4<f32>(0.0);
  for (var d4 = 0u; d4 < D4; d4++) {
    let qm = transpose(mat4x4<f32>(q[row.x * D4 + d4], q[row.y * D4 + d4], q[row.z * D4 + d4], q[row.w * D4 + d4])) * p.scale;
    let dom = transpose(mat4x4<f32>(grad_out[row.x * D4 + d4], grad_out[row.y * D4 + d4], grad_out[row.z * D4 + d4], grad_out[row.w * D4 + d4]));
    let om = transpose(mat4x4<f32>(out[row.x * D4 + d4], out[row.y * D4 + d4], out[row.z * D4 + d4], out[row.w * D4 + d4]));
    for (var i = 0u; i < 4u; i++) {
      qs[4u * d4 + i] = qm[i];
      dos[4u * d4 + i] = dom[i];
      dq[4u * d4 + i] = vec4<f32>(0.0);
      row_delta = fma(dom[i], om[i], row_delta);
    }
  }
  if (p.first != 0u) {
    for (var c = 0u; c < 4u; c++) {
      if (stored[c]) { delta[row[c]] = row_delta[c]; }
    }
  }
  if (key_begin >= key_end) { return; }
  let row_lse = vec4<f32>(lse[row.x], lse[row.y], lse[row.z], lse[row.w]);

  let key_stride = p.kv_heads * D4;
  let head_at = (b * p.keys * p.kv_heads + g) * D4;
  for (var j = key_begin; j < key_end; j++) {
    let at = head_at + j * key_stride;
    var kj: array<vec4<f32>, D4>;
    var s = vec4<f32>(0.0);
    var dp = vec4<f32>(0.0);
    for (var d4 = 0u; d4 < D4; d4++) { // unroll
      kj[d4] = from_lane0(k_window[at + d4 + p.k_shift]);
      let vv = from_lane0(v_window[at + d4 + p.v_shift]);
      for (var i = 0u; i < 4u; i++) { // unroll
        s = fma(qs[4u * d4 + i], vec4<f32>(kj[d4][i]), s);
        dp = fma(dos[4u * d4 + i], vec4<f32>(vv[i]), dp);
      }
    }
    let prob = select(vec4<f32>(0.0), exp(s - row_lse), (vec4<u32>(j) <= pos) & (pos - vec4<u32>(j) < vec4<u32>(p.window)));
    let ds = prob * (dp - row_delta);
    for (var d4 = 0u; d4 < D4; d4++) { // unroll
      for (var i = 0u; i < 4u; i++) { // unroll
        dq[4u * d4 + i] = fma(ds, vec4<f32>(kj[d4][i]), dq[4u * d4 + i]);
      }
    }
  }

  for (var c = 0u; c < 4u; c++) {
    if (stored[c]) {
      for (var d = 0u; d < D; d++) {
        grad_q[row[c] * D + d] += dq[d][c] * p.scale;
      }
    }
  }
}
