// Causal grouped-query attention backward, query side (FlashAttention-2's dQ pass): recomputes
// P_ij = exp(scale · q_i·k_j − lse_i) from the saved log-sum-exp and sums
//   dq_i = scale · Σ_j P_ij (dO_i·v_j − δ_i) k_j,   δ_i = dO_i·O_i.
// It also writes δ, which the key-side pass needs, so there is no separate preprocessing pass.
// Work split as in attention_forward.wgsl: a workgroup owns 4 query rows (the components of its
// vec4s), its invocations take every LANES-th key, and their partial sums meet in workgroup memory.
// Masking (key_start, causality, window) is the forward's.
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
@group(0) @binding(5) var<storage, read> out: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> grad_out: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> lse: array<f32>;
@group(0) @binding(8) var<storage, read_write> grad_q: array<f32>;
@group(0) @binding(9) var<storage, read_write> delta: array<f32>;

// Head dim (a multiple of 4).
const D: u32 = 64u;
const D4: u32 = D / 4u;
// Invocations per workgroup, each taking every LANES-th key.
const LANES: u32 = 8u;

var<workgroup> lane_acc: array<vec4<f32>, LANES * D>;

@compute @workgroup_size(LANES)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let group = p.q_heads / p.kv_heads;
  let rows = p.queries * group;
  let b = wg.z;
  let g = wg.y;
  let first_pos = p.kv_length - p.queries;
  let rc = min(vec4<u32>(wg.x * 4u) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(rows - 1u));
  let t = rc / group;
  let row = (b * p.queries + t) * p.q_heads + g * group + rc % group;
  let pos = first_pos + t;
  let key_begin = max(key_start[b], select(0u, pos.x + 1u - p.window, pos.x + 1u > p.window));
  let key_end = pos.w + 1u;

  // Component c of qs[d] / dos[d] is dimension d of row c (loops over D unrolled; see forward).
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
  let row_lse = vec4<f32>(lse[row.x], lse[row.y], lse[row.z], lse[row.w]);
  let kv_row = b * p.keys * p.kv_heads + g;

  for (var j0 = key_begin; j0 < key_end; j0 += LANES) {
    let j = j0 + lane;
    let kr = (kv_row + min(j, key_end - 1u) * p.kv_heads) * D4;
    var kj: array<vec4<f32>, D4>;
    var s = vec4<f32>(0.0);
    var dp = vec4<f32>(0.0);
    for (var d4 = 0u; d4 < D4; d4++) { // unroll
      kj[d4] = k[kr + d4];
      let vv = v[kr + d4];
      for (var i = 0u; i < 4u; i++) { // unroll
        s = fma(qs[4u * d4 + i], vec4<f32>(kj[d4][i]), s);
        dp = fma(dos[4u * d4 + i], vec4<f32>(vv[i]), dp);
      }
    }
    let prob = select(vec4<f32>(0.0), exp(s - row_lse), (vec4<u32>(j) <= pos) & (pos - vec4<u32>(j) < vec4<u32>(p.window)));
    let ds = prob * (dp - row_delta);
    for (var d4 = 0u; d4 < D4; d4++) { // unroll
      for (var i = 0u; i < 4u; i++) { dq[4u * d4 + i] = fma(ds, vec4<f32>(kj[d4][i]), dq[4u * d4 + i]); }
    }
  }

  for (var d4 = 0u; d4 < D4; d4++) {
    for (var i = 0u; i < 4u; i++) { lane_acc[(4u * d4 + i) * LANES + lane] = dq[4u * d4 + i]; }
  }
  workgroupBarrier();
  let stored = vec4<u32>(wg.x * 4u) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(rows);
  for (var d = lane; d < D; d += LANES) {
    var total = vec4<f32>(0.0);
    for (var i = 0u; i < LANES; i++) { total += lane_acc[d * LANES + i]; }
    for (var c = 0u; c < 4u; c++) {
      if (stored[c]) { grad_q[row[c] * D + d] = total[c] * p.scale; }
    }
  }
  if (lane == 0u) {
    for (var c = 0u; c < 4u; c++) {
      if (stored[c]) { delta[row[c]] = row_delta[c]; }
    }
  }
}
