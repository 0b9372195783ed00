// First pass of the global gradient norm: each workgroup writes the sum of squares of one CHUNK
// of a tensor to partials[offset + workgroup]. Every tensor gets its own dispatch into its own
// range of the shared partials buffer.
struct Params {
  n: u32,
  offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;

const WG: u32 = 256u;
const CHUNK: u32 = 4096u;

var<workgroup> shared_sum: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let group = wid.x + wid.y * groups.x;
  let start = group * CHUNK;
  let end = min(start + CHUNK, p.n);
  var sum = 0.0;
  for (var i = start + lid; i < end; i += WG) {
    sum += x[i] * x[i];
  }
  shared_sum[lid] = sum;
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if (lid < stride) { shared_sum[lid] += shared_sum[lid + stride]; }
  }
  if (lid == 0u && start < p.n) {
    partials[p.offset + group] = shared_sum[0];
  }
}
