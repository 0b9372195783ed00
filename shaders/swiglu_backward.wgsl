// Both gradients of out = silu(gate) · up in one pass:
//   d_gate = g · up · σ(gate)(1 + gate(1 − σ(gate))),  d_up = g · silu(gate).
// V as in swiglu.
struct Params { n: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gate: array<V>;
@group(0) @binding(2) var<storage, read> up: array<V>;
@group(0) @binding(3) var<storage, read> g: array<V>;
@group(0) @binding(4) var<storage, read_write> d_gate: array<V>;
@group(0) @binding(5) var<storage, read_write> d_up: array<V>;

alias V = f32;
const WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i < p.n) {
    let a = gate[i];
    let s = 1.0 / (1.0 + exp(-a));
    let gi = g[i];
    d_gate[i] = gi * up[i] * s * (1.0 + a * (1.0 - s));
    d_up[i] = gi * a * s;
  }
}
