// Second pass of the global gradient norm: norm[0] = √(Σ partials), in one workgroup.
struct Params {
  n: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> norm: array<f32>;

const WG: u32 = 256u;

var<workgroup> shared_sum: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  var sum = 0.0;
  for (var i = lid; i < p.n; i += WG) {
    sum += partials[i];
  }
  shared_sum[lid] = sum;
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if (lid < stride) { shared_sum[lid] += shared_sum[lid + stride]; }
  }
  if (lid == 0u) {
    norm[0] = sqrt(shared_sum[0]);
  }
}
