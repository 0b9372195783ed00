// Gradient of softmax.wgsl for x, from its output y and the incoming gradient g, per row:
//   softmax:      dx = y ⊙ (g − Σ g⊙y)
//   log-softmax:  dx = g − exp(y) · Σ g
struct Params {
  rows: u32,
  cols: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

const LOG: bool = false;
// A power of two (the tree below halves it).
const WG: u32 = 64u;

var<workgroup> tree: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) groups: vec3<u32>) {
  let row = wid.x + wid.y * groups.x;
  if (row >= p.rows) { return; }
  let start = row * p.cols;
  let t = lid.x;

  var partial = 0.0;
  for (var j = t; j < p.cols; j += WG) {
    partial += select(g[start + j] * y[start + j], g[start + j], LOG);
  }
  tree[t] = partial;
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if (t < stride) { tree[t] += tree[t + stride]; }
  }
  workgroupBarrier();
  let total = tree[0];
  for (var j = t; j < p.cols; j += WG) {
    let yj = y[start + j];
    let gj = g[start + j];
    dx[start + j] = select(yj * (gj - total), gj - exp(yj) * total, LOG);
  }
}
