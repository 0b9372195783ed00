// dx[i] = factor · g · mask[i] / Σ mask: the gradient of masked_mean.wgsl.
struct Params {
  n: u32,
  factor: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
@group(0) @binding(3) var<storage, read> mask_sum: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

const WG: u32 = 256u;
const HAS_MASK: bool = true;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i >= p.n) { return; }
  var weight = 1.0;
  if (HAS_MASK) { weight = mask[i]; }
  dx[i] = p.factor * grad[0] * weight / mask_sum[0];
}
