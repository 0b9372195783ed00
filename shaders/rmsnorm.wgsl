// RMSNorm as Hugging Face Llama computes it, in f32: y = x · rsqrt(mean(x²) + eps) ⊙ weight, one
// workgroup per row of x [rows, cols]. Also writes each row's rsqrt(...) for the backward pass.
// With RESIDUAL the row normalised is x + residual, which is written to `sum` as well (a decoder's
// residual add and the next norm in one pass).
struct Params {
  rows: u32,
  cols: u32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<W>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> rstd: array<f32>;
// Without RESIDUAL the op binds read-only and writable buffers it already binds and never touches these.
@group(0) @binding(5) var<storage, read> residual: array<f32>;
@group(0) @binding(6) var<storage, read_write> sum: array<f32>;

// f16 for a frozen half-precision weight.
alias W = f32;
// Without a weight the op binds x in its slot and never reads it.
const HAS_WEIGHT: bool = true;
const RESIDUAL: bool = false;
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
    var v = x[start + j];
    if (RESIDUAL) {
      v += residual[start + j];
      sum[start + j] = v;
    }
    partial += v * v;
  }
  tree[t] = partial;
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if (t < stride) { tree[t] += tree[t + stride]; }
  }
  workgroupBarrier();
  let r = inverseSqrt(tree[0] / f32(p.cols) + p.eps);
  if (t == 0u) { rstd[row] = r; }
  for (var j = t; j < p.cols; j += WG) {
    // Normalise first, then scale, in HF's order. Each lane rereads the sum it wrote itself.
    var v: f32;
    if (RESIDUAL) { v = sum[start + j]; } else { v = x[start + j]; }
    let normed = v * r;
    out[start + j] = select(normed, normed * f32(weight[j]), HAS_WEIGHT);
  }
}
