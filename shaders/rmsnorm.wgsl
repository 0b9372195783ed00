// RMSNorm as Hugging Face Llama computes it, in f32: y = x · rsqrt(mean(x²) + eps) ⊙ weight, one
// workgroup per row of x [rows, cols]. Also writes each row's rsqrt(...) for the backward pass.
// With RESIDUAL the row normalised is x + residual, which is written to `sum` as well (a decoder's
// residual add and the next norm in one pass). V is vec4<f32> when a row is a whole number of
// vec4s (4 columns per access, see swiglu), WV the weight's vector of the same width; `cols`
// counts V elements.
struct Params {
  rows: u32,
  cols: u32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<V>;
@group(0) @binding(2) var<storage, read> weight: array<WV>;
@group(0) @binding(3) var<storage, read_write> out: array<V>;
@group(0) @binding(4) var<storage, read_write> rstd: array<f32>;
// Without RESIDUAL the op binds read-only and writable buffers it already binds and never touches these.
@group(0) @binding(5) var<storage, read> residual: array<V>;
@group(0) @binding(6) var<storage, read_write> sum: array<V>;

alias V = f32;
// f16 (or its vec4) for a frozen half-precision weight.
alias WV = f32;
// Columns per V (1 or 4).
const WIDTH: u32 = 1u;
// Without a weight the op binds x in its slot and never reads it.
const HAS_WEIGHT: bool = true;
const RESIDUAL: bool = false;
// A power of two (the tree below halves it).
const WG: u32 = 64u;

var<workgroup> tree: array<f32, WG>;

// The sum of v's components (an f32 widens to a vec4 of 4 copies: the first is its sum).
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
    var v = x[start + j];
    if (RESIDUAL) {
      v += residual[start + j];
      sum[start + j] = v;
    }
    partial += v * v;
  }
  tree[t] = total(partial);
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if (t < stride) { tree[t] += tree[t + stride]; }
  }
  workgroupBarrier();
  let r = inverseSqrt(tree[0] / f32(p.cols * WIDTH) + p.eps);
  if (t == 0u) { rstd[row] = r; }
  for (var j = t; j < p.cols; j += WG) {
    // Normalise first, then scale, in HF's order. Each lane rereads the sum it wrote itself.
    var v: V;
    if (RESIDUAL) { v = sum[start + j]; } else { v = x[start + j]; }
    let normed = v * r;
    out[start + j] = select(normed, normed * V(weight[j]), HAS_WEIGHT);
  }
}
