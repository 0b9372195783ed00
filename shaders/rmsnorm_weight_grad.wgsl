// dL/dweight of rmsnorm.wgsl: column j sums g[r, j] · x[r, j] · rstd[r] over all rows. One
// invocation per column walks the rows in order, so the result is deterministic without atomics,
// and neighbouring invocations read neighbouring addresses.
struct Params {
  rows: u32,
  cols: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> rstd: array<f32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;
@group(0) @binding(4) var<storage, read_write> d_weight: array<f32>;

const WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let j = gid.x + gid.y * groups.x * WG;
  if (j >= p.cols) { return; }
  var sum = 0.0;
  for (var r = 0u; r < p.rows; r++) {
    let i = r * p.cols + j;
    sum += g[i] * x[i] * rstd[r];
  }
  d_weight[j] = sum;
}
