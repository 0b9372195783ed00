// acc += src, elementwise (f32). Used for gradient accumulation; acc is read_write so the sum
// happens in place without binding one buffer twice. V as in swiglu.
struct Params { n: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> acc: array<V>;
@group(0) @binding(2) var<storage, read> src: array<V>;

alias V = f32;
const WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i < p.n) {
    acc[i] = acc[i] + src[i];
  }
}
