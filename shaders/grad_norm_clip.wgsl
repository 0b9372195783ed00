// x *= min(1, max_norm / (norm[0] + 1e-6)) in place: torch.nn.utils.clip_grad_norm_'s scaling,
// with the norm read on the GPU so clipping needs no read-back.
struct Params {
  n: u32,
  max_norm: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> norm: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;

const WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i >= p.n) { return; }
  x[i] = x[i] * min(1.0, p.max_norm / (norm[0] + 1e-6));
}
