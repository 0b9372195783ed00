// Causal grouped-query attention backward, key side (FlashAttention-2's dK/dV pass): each
// invocation owns one key row of one kv head and walks the queries that see it, over every query
// head of its group, recomputing P_ij = exp(scale · q_i·k_j − lse_i):
//   dv_j = Σ_i P_ij dO_i,   dk_j = scale · Σ_i P_ij (dO_i·v_j − δ_i) q_i.
// Summing over the group's heads here is the GQA reduction, with no atomics. The rows of a
// workgroup are consecutive keys of one kv head, so each q/dO load is shared by the workgroup.
// Keys outside [key_start[b], kv_length) get zero gradients.
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
@group(0) @binding(5) var<storage, read> grad_out: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> lse: array<f32>;
@group(0) @binding(7) var<storage, read> delta: array<f32>;
@group(0) @binding(8) var<storage, read_write> grad_k: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> grad_v: array<vec4<f32>>;

// Head dim / 4.
const D4: u32 = 16u;
// Key rows per workgroup, one per invocation.
const ROWS: u32 = 8u;

@compute @workgroup_size(ROWS)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let group = p.q_heads / p.kv_heads;
  let b = wg.z;
  let g = wg.y;
  let first_key = wg.x * ROWS;
  let j = first_key + lane;
  let jc = min(j, p.keys - 1u);
  let kr = ((b * p.keys + jc) * p.kv_heads + g) * D4;
  let first_pos = p.kv_length - p.queries;
  let key_valid = j >= key_start[b] && j < p.kv_length;

  var ks: array<vec4<f32>, D4>;
  var vs: array<vec4<f32>, D4>;
  var dk: array<vec4<f32>, D4>;
  var dv: array<vec4<f32>, D4>;
  for (var d = 0u; d < D4; d++) {
    ks[d] = k[kr + d] * p.scale;
    vs[d] = v[kr + d];
    dk[d] = vec4<f32>(0.0);
    dv[d] = vec4<f32>(0.0);
  }

  // The first query that sees this workgroup's first key: position first_pos + t >= first_key.
  let t_begin = select(0u, first_key - first_pos, first_key > first_pos);
  for (var t = t_begin; t < p.queries; t++) {
    let sees = key_valid && j <= first_pos + t;
    for (var h = g * group; h < (g + 1u) * group; h++) {
      let row = (b * p.queries + t) * p.q_heads + h;
      var s4 = vec4<f32>(0.0);
      var dp4 = vec4<f32>(0.0);
      for (var d = 0u; d < D4; d++) {
        s4 = fma(ks[d], q[row * D4 + d], s4);
        dp4 = fma(vs[d], grad_out[row * D4 + d], dp4);
      }
      let prob = select(0.0, exp(s4.x + s4.y + s4.z + s4.w - lse[row]), sees);
      let ds = prob * (dp4.x + dp4.y + dp4.z + dp4.w - delta[row]);
      for (var d = 0u; d < D4; d++) {
        dv[d] = fma(vec4<f32>(prob), grad_out[row * D4 + d], dv[d]);
        dk[d] = fma(vec4<f32>(ds), q[row * D4 + d], dk[d]);
      }
    }
  }

  if (j >= p.keys) { return; }
  for (var d = 0u; d < D4; d++) {
    grad_k[kr + d] = dk[d] * p.scale;
    grad_v[kr + d] = dv[d];
  }
}
