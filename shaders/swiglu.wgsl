// Llama's MLP gate: out = silu(gate) · up, elementwise over [..., F] (f32), fused so the
// silu(gate) intermediate never reaches memory. V is vec4<f32> when the count is a multiple of 4
// (elementVectors): one 16-byte access per invocation instead of four 4-byte ones.
struct Params { n: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gate: array<V>;
@group(0) @binding(2) var<storage, read> up: array<V>;
@group(0) @binding(3) var<storage, read_write> out: array<V>;

alias V = f32;
const WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i < p.n) {
    let a = gate[i];
    out[i] = a / (1.0 + exp(-a)) * up[i];
  }
}
