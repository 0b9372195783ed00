// Causal grouped-query attention backward, key side (FlashAttention-2's dK/dV pass): for each key
// row of a kv head, walks the query rows that see it, over every query head of its group,
// recomputing P_ij = exp(scale · q_i·k_j − lse_i):
//   dv_j = Σ_i P_ij dO_i,   dk_j = scale · Σ_i P_ij (dO_i·v_j − δ_i) q_i.
// Summing over the group's heads here is the GQA reduction, with no atomics.
// A workgroup owns 4 consecutive keys (the components of its vec4s); its invocations take every
// LANES-th query row, so each q/dO element loaded serves 4 keys and no two invocations load the
// same one (see attention_forward.wgsl for why that matters on lavapipe). The partial sums meet
// in workgroup memory. Keys outside [key_start[b], kv_length) get zero gradients; a query sees a
// key only within its window (position − j < window).
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
@group(0) @binding(5) var<storage, read> grad_out: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> lse: array<f32>;
@group(0) @binding(7) var<storage, read> delta: array<f32>;
@group(0) @binding(8) var<storage, read_write> grad_k: array<f32>;
@group(0) @binding(9) var<storage, read_write> grad_v: array<f32>;

// Head dim (a multiple of 4).
const D: u32 = 64u;
const D4: u32 = D / 4u;
// Invocations per workgroup, each taking every LANES-th query row.
const LANES: u32 = 8u;

// Merges dk, then dv: one buffer keeps workgroup memory at LANES · D vec4s.
var<workgroup> lane_acc: array<vec4<f32>, LANES * D>;

@compute @workgroup_size(LANES)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let group = p.q_heads / p.kv_heads;
  let rows = p.queries * group;
  let b = wg.z;
  let g = wg.y;
  let first_key = wg.x * 4u;
  let j = vec4<u32>(first_key) + vec4<u32>(0u, 1u, 2u, 3u);
  let kr = ((b * p.keys + min(j, vec4<u32>(p.keys - 1u))) * p.kv_heads + g) * D4;
  let first_pos = p.kv_length - p.queries;
  let key_valid = (j >= vec4<u32>(key_start[b])) & (j < vec4<u32>(p.kv_length));

  // Component c of ks[d] / vs[d] is dimension d of key c (loops over D unrolled; see forward).
  var ks: array<vec4<f32>, D>;
  var vs: array<vec4<f32>, D>;
  var dk: array<vec4<f32>, D>;
  var dv: array<vec4<f32>, D>;
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

  // The first query that sees the workgroup's first key: position first_pos + t >= first_key.
  let t_begin = select(0u, first_key - first_pos, first_key > first_pos);
  // Queries from position first_key + 3 + window on see none of the workgroup's keys.
  let window_end = first_key + 3u + p.window;
  let t_end = min(p.queries, select(0u, window_end - first_pos, window_end > first_pos));
  for (var r0 = t_begin * group; r0 < t_end * group; r0 += LANES) {
    let r = r0 + lane;
    let rc = min(r, rows - 1u);
    let t = rc / group;
    let row = (b * p.queries + t) * p.q_heads + g * group + rc % group;
    let query_pos = vec4<u32>(first_pos + t);
    let sees = key_valid & (j <= query_pos) & (query_pos - j < vec4<u32>(p.window)) & vec4<bool>(r < rows);
    var qi: array<vec4<f32>, D4>;
    var doi: array<vec4<f32>, D4>;
    var s = vec4<f32>(0.0);
    var dp = vec4<f32>(0.0);
    for (var d4 = 0u; d4 < D4; d4++) { // unroll
      qi[d4] = q[row * D4 + d4];
      doi[d4] = grad_out[row * D4 + d4];
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
  for (var d4 = 0u; d4 < D4; d4++) {
    for (var i = 0u; i < 4u; i++) { lane_acc[(4u * d4 + i) * LANES + lane] = dk[4u * d4 + i]; }
  }
  workgroupBarrier();
  for (var d = lane; d < D; d += LANES) {
    var total = vec4<f32>(0.0);
    for (var i = 0u; i < LANES; i++) { total += lane_acc[d * LANES + i]; }
    for (var c = 0u; c < 4u; c++) {
      if (stored[c]) { grad_k[out_row[c] + d] = total[c] * p.scale; }
    }
  }
  workgroupBarrier();
  for (var d4 = 0u; d4 < D4; d4++) {
    for (var i = 0u; i < 4u; i++) { lane_acc[(4u * d4 + i) * LANES + lane] = dv[4u * d4 + i]; }
  }
  workgroupBarrier();
  for (var d = lane; d < D; d += LANES) {
    var total = vec4<f32>(0.0);
    for (var i = 0u; i < LANES; i++) { total += lane_acc[d * LANES + i]; }
    for (var c = 0u; c < 4u; c++) {
      if (stored[c]) { grad_v[out_row[c] + d] = total[c]; }
    }
  }
}
