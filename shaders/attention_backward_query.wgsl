// Causal grouped-query attention backward, query side (FlashAttention-2's dQ pass): each invocation
// owns one query row, recomputes its probabilities from q, k and the saved log-sum-exp, and sums
// dq = scale · Σ_j P_ij (dO_i·v_j − δ_i) k_j in registers. It also writes δ_i = dO_i·O_i, which the
// key-side pass needs, so no separate preprocessing dispatch is required.
// Rows, layouts and masking as in attention_forward.wgsl.
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
@group(0) @binding(5) var<storage, read> out: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> grad_out: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> lse: array<f32>;
@group(0) @binding(8) var<storage, read_write> grad_q: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> delta: array<f32>;

// Head dim / 4.
const D4: u32 = 16u;
// Query rows per workgroup, one per invocation.
const ROWS: u32 = 8u;

@compute @workgroup_size(ROWS)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let group = p.q_heads / p.kv_heads;
  let rows = p.queries * group;
  let b = wg.z;
  let g = wg.y;
  let first_row = wg.x * ROWS;
  let r = first_row + lane;
  let rc = min(r, rows - 1u);
  let t = rc / group;
  let row = (b * p.queries + t) * p.q_heads + g * group + rc % group;
  let first_pos = p.kv_length - p.queries;
  let pos = first_pos + t;
  let key_begin = key_start[b];
  let key_end = first_pos + (min(first_row + ROWS, rows) - 1u) / group + 1u;

  var qs: array<vec4<f32>, D4>;
  var dout: array<vec4<f32>, D4>;
  var dq: array<vec4<f32>, D4>;
  var delta4 = vec4<f32>(0.0);
  for (var d = 0u; d < D4; d++) {
    qs[d] = q[row * D4 + d] * p.scale;
    dout[d] = grad_out[row * D4 + d];
    delta4 = fma(dout[d], out[row * D4 + d], delta4);
    dq[d] = vec4<f32>(0.0);
  }
  let row_delta = delta4.x + delta4.y + delta4.z + delta4.w;
  let row_lse = lse[row];
  let kv_base = b * p.keys * p.kv_heads + g;

  for (var j = key_begin; j < key_end; j++) {
    let kr = (kv_base + j * p.kv_heads) * D4;
    var s4 = vec4<f32>(0.0);
    var dp4 = vec4<f32>(0.0);
    for (var d = 0u; d < D4; d++) {
      s4 = fma(qs[d], k[kr + d], s4);
      dp4 = fma(dout[d], v[kr + d], dp4);
    }
    let prob = select(0.0, exp(s4.x + s4.y + s4.z + s4.w - row_lse), j <= pos);
    let ds = prob * (dp4.x + dp4.y + dp4.z + dp4.w - row_delta);
    for (var d = 0u; d < D4; d++) { dq[d] = fma(vec4<f32>(ds), k[kr + d], dq[d]); }
  }

  if (r >= rows) { return; }
  for (var d = 0u; d < D4; d++) { grad_q[row * D4 + d] = dq[d] * p.scale; }
  delta[row] = row_delta;
}
