// dL/dx of rmsnorm.wgsl per row, with r = rsqrt(mean(x²) + eps) saved by the forward and
// h = g ⊙ weight:  dx = r·h − x · r³ · (Σ h⊙x) / cols. V, WV, WIDTH and total() as in rmsnorm.
struct Params {
  rows: u32,
  cols: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<V>;
@group(0) @binding(2) var<storage, read> weight: array<WV>;
@group(0) @binding(3) var<storage, read> rstd: array<f32>;
@group(0) @binding(4) var<storage, read> g: array<V>;
@group(0) @binding(5) var<storage, read_write> dx: array<V>;

alias V = f32;
alias WV = f32;
const WIDTH: u32 = 1u;
const HAS_WEIGHT: bool = true;
// A power of two (the tree below halves it).
const WG: u32 = 64u;

var<workgroup> tree: array<f32, WG>;

fn scaled_grad(i: u32, j: u32) -> V {
  return select(g[i], g[i] * V(weight[j]), HAS_WEIGHT);
}

fn total(v: V) -> f32 {
  let w = vec4<f32>(v);
  return select(w.x, (w.x + w.y) + (w.z + w.w), WIDTH == 4u);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) groups: vec3<u32>) {
  let row = wid.x + wid.y * groups.x;
  if (row >= p.rows) { return; }
  let start = row * p.cols;
  let t = lid.x;

  var partial = V(0.0);
  for (var j = t; j < p.cols; j += WG) {
    partial += scaled_grad(start + j, j) * x[start + j];
  }
  tree[t] = total(partial);
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if (t < stride) { tree[t] += tree[t + stride]; }
  }
  workgroupBarrier();
  let r = rstd[row];
  let coefficient = r * r * r * tree[0] / f32(p.cols * WIDTH);
  for (var j = t; j < p.cols; j += WG) {
    dx[start + j] = r * scaled_grad(start + j, j) - x[start + j] * coefficient;
  }
}
