// out[0] = factor · Σ mask·x / Σ mask over a vector, in one workgroup (the vector is per-token,
// a few thousand long). Σ mask is saved for the backward. Without HAS_MASK every weight is 1
// (the mask binding is then an alias of x and never read).
struct Params {
  n: u32,
  factor: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> mask_sum: array<f32>;

const WG: u32 = 256u;
const HAS_MASK: bool = true;

var<workgroup> shared_wx: array<f32, WG>;
var<workgroup> shared_w: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  var wx = 0.0;
  var w = 0.0;
  for (var i = lid; i < p.n; i += WG) {
    var weight = 1.0;
    if (HAS_MASK) { weight = mask[i]; }
    // A masked-out token contributes nothing even if its value is inf or NaN.
    if (weight != 0.0) { wx += weight * x[i]; }
    w += weight;
  }
  shared_wx[lid] = wx;
  shared_w[lid] = w;
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if (lid < stride) {
      shared_wx[lid] += shared_wx[lid + stride];
      shared_w[lid] += shared_w[lid + stride];
    }
  }
  if (lid == 0u) {
    out[0] = p.factor * shared_wx[0] / shared_w[0];
    mask_sum[0] = shared_w[0];
  }
}
