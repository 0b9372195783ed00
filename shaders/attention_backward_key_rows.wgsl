// Causal grouped-query attention backward, key side, for many query rows: the dK/dV pass of
// attention_backward_key.wgsl with the keys split across the lanes and the query rows read
// through uniform windows. A workgroup owns 4·LANES keys of one kv head (4 per lane, as vec4
// components) and walks the query rows of one window of query positions, over every query head
// of the group; q and dO come through uniform bindings, loaded by lane 0 (see
// attention_forward_rows.wgsl). It recomputes P_ij = exp(scale · q_i·k_j − lse_i) and adds this
// window's part of
//   dv_j = Σ_i P_ij dO_i,   dk_j = scale · Σ_i P_ij (dO_i·v_j − δ_i) q_i
// to grad_k and grad_v, which the host zeroes first (keys outside [key_start[b], kv_length) keep
// zero gradients). Dispatched once per (batch row, window of query positions).
struct Params {
  queries: u32,
  keys: u32,
  q_heads: u32,
  kv_heads: u32,
  kv_length: u32,
  window: u32,
  // This dispatch's batch row and query positions [t_lo, t_hi) (indices into q's T).
  batch: u32,
  t_lo: u32,
  t_hi: u32,
  // Element i (a vec4) of q is q_window[i + q_shift], modulo 2^32 (likewise grad_out).
  q_shift: u32,
  grad_out_shift: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> q_window: array<vec4<f32>, Q_WINDOW>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> key_start: array<u32>;
@group(0) @binding(5) var<uniform> grad_out_window: array<vec4<f32>, GRAD_OUT_WINDOW>;
@group(0) @binding(6) var<storage, read> lse: array<f32>;
@group(0) @binding(7) var<storage, read> delta: array<f32>;
@group(0) @binding(8) var<storage, read_write> grad_k: array<f32>;
@group(0) @binding(9) var<storage, read_write> grad_v: array<f32>;

const D: u32 = 64u;
const D4: u32 = D / 4u;
const LANES: u32 = 8u;
const Q_WINDOW: u32 = 4096u;
const GRAD_OUT_WINDOW: u32 = 4096u;
const SUBGROUPS: bool = true;

fn from_lane0(x: vec4<f32>) -> vec4<f32> {
  if (SUBGROUPS) { return subgroupBroadcast(x, 0u); }
  return x;
}

@compute @workgroup_size(LANES)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let group = p.q_heads / p.kv_heads;
  let b = p.batch;
  let g = wg.y;
  let first_pos = p.kv_length - p.queries;
  let block0 = wg.x * 4u * LANES;
  let j = vec4<u32>(block0 + 4u * lane) + vec4<u32>(0u, 1u, 2u, 3u);
  let key_valid = (j >= vec4<u32>(key_start[b])) & (j < vec4<u32>(p.kv_length));
  // The window's query positions that see any of the workgroup's keys: position ≥ its first key
  // and position − its last key < window.
  let block_last = min(block0 + 4u * LANES, p.keys) - 1u;
  let t_begin = max(p.t_lo, select(0u, block0 - first_pos, block0 > first_pos));
  let window_end = block_last + p.window;
  let t_end = min(p.t_hi, select(0u, window_end - first_pos, window_end > first_pos));
  if (t_begin >= t_end) { return; }

  // Component c of ks[d] / vs[d] is dimension d of key c; ks pre-scaled.
  var ks: array<vec4<f32>, D>;
  var vs: array<vec4<f32>, D>;
  var dk: array<vec4<f32>, D>;
  var dv: array<vec4<f32>, D>;
  let kr = ((b * p.keys + min(j, vec4<u32>(p.keys - 1u))) * p.kv_heads + g) * D4;
  for (var d4 = 0u; d4 < D4; d4++) {
    let km = transpose(mat4x4<f32>(k[kr.x + d4], k[kr.y + d4], k[kr.z + d4], k[kr.w + d4])) * p.scale;
    let vm = transpose(mat4x4<f32>(v[kr.x + d4], v[kr.y + d4], v[kr.z + d4], v[kr.w + d4]));
    for (var i = 0u; i < 4u; i++) {
      ks[4u * d4 + i] = km[i];
      vs[4u * d4 + i] = vm[i];
      dk[4u * d4 + i] = vec4<f32>(0.0);
      dv[4u * d4 + i] = vec4<f32>(0.0);
    }
  }

  for (var r = t_begin * group; r < t_end * group; r++) {
    let t = r / group;
    let row = (b * p.queries + t) * p.q_heads + g * group + r % group;
    let query_pos = vec4<u32>(first_pos + t);
    let sees = key_valid & (j <= query_pos) & (query_pos - j < vec4<u32>(p.window));
    var qi: array<vec4<f32>, D4>;
    var doi: array<vec4<f32>, D4>;
    var s = vec4<f32>(0.0);
    var dp = vec4<f32>(0.0);
    for (var d4 = 0u; d4 < D4; d4++) { // unroll
      qi[d4] = from_lane0(q_window[row * D4 + d4 + p.q_shift]);
      doi[d4] = from_lane0(grad_out_window[row * D4 + d4 + p.grad_out_shift]);
      for (var i = 0u; i < 4u; i++) { // unroll
        s = fma(ks[4u * d4 + i], vec4<f32>(qi[d4][i]), s);
        dp = fma(vs[4u * d4 + i], vec4<f32>(doi[d4][i]), dp);
      }
    }
    let prob = select(vec4<f32>(0.0), exp(s - lse[row]), sees);
    let ds = prob * (dp - delta[row]);
    for (var d4 = 0u; d4 < D4; d4++) { // unroll
      for (var i = 0u; i < 4u; i++) { // unroll
        dv[4u * d4 + i] = fma(prob, vec4<f32>(doi[d4][i]), dv[4u * d4 + i]);
        dk[4u * d4 + i] = fma(ds, vec4<f32>(qi[d4][i]), dk[4u * d4 + i]);
      }
    }
  }

  let stored = j < vec4<u32>(p.keys);
  let out_row = ((b * p.keys + j) * p.kv_heads + g) * D;
  for (var c = 0u; c < 4u; c++) {
    if (stored[c]) {
      for (var d = 0u; d < D; d++) {
        grad_k[out_row[c] + d] += dk[d][c] * p.scale;
        grad_v[out_row[c] + d] += dv[d][c];
      }
    }
  }
}
