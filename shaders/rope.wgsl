// Rotary position embedding, Hugging Face Llama's rotate-half convention: within each head the
// pair (x_i, x_{i+D/2}) is rotated by angle position · inv_freq_i. One invocation per V's worth of
// pairs: 4 consecutive ones (V = vec4<f32>) when D/2 is a multiple of 4, else 1 (see swiglu).
// cos/sin come from a table the host computed exactly (float64, rounded to f32, as PyTorch's
// cos/sin of the f32 angle); positions past the table fall back to this GPU's cos/sin of the same
// f32 angle. direction −1 rotates back, which is the backward (a rotation's transpose; the
// attention factor scales both ways).
// x, out [B, T, H, D]; positions [B, T]; inv_freq [D/2]; table [table_positions, 2, D/2]: each
// position's cos row, then its sin row. Counts in Params are of V elements.
struct Params {
  invocations: u32,
  heads: u32,
  half_dim: u32,
  table_positions: u32,
  direction: f32,
  // Multiplies cos and sin (yarn's attention factor; the table already holds it).
  attention_factor: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<V>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
@group(0) @binding(3) var<storage, read> inv_freq: array<V>;
@group(0) @binding(4) var<storage, read> table: array<V>;
@group(0) @binding(5) var<storage, read_write> out: array<V>;

alias V = f32;
const WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let idx = gid.x + gid.y * groups.x * WG;
  if (idx >= p.invocations) { return; }
  let i = idx % p.half_dim;
  let head_row = idx / p.half_dim;
  let pos = positions[head_row / p.heads];
  var c: V;
  var s: V;
  if (pos < p.table_positions) {
    c = table[2u * pos * p.half_dim + i];
    s = table[(2u * pos + 1u) * p.half_dim + i];
  } else {
    let angle = f32(pos) * inv_freq[i];
    c = cos(angle) * p.attention_factor;
    s = sin(angle) * p.attention_factor;
  }
  s = p.direction * s;
  let lo = head_row * 2u * p.half_dim + i;
  let hi = lo + p.half_dim;
  let a = x[lo];
  let b = x[hi];
  out[lo] = a * c - b * s;
  out[hi] = b * c + a * s;
}
