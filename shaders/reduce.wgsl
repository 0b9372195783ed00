// Reduces rows to one value each, one workgroup per row: row r is x[r·cols, min(r·cols + cols, n)),
// so a flat tensor can be cut into chunks whose last one is short (the all-elements reduce's first
// pass). OP 0: sum, times `scale` (so mean is the same kernel); OP 1: max, also writing where in
// its row the first maximum is (max's backward routes the gradient there).
struct Params {
  rows: u32,
  cols: u32,
  n: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> out_index: array<u32>;

const OP: u32 = 0u;
// A power of two (the tree below halves it).
const WG: u32 = 64u;
// Marks a lane that saw no element: -inf cannot be written as a WGSL constant, and an index tells
// max which candidates are real.
const NONE: u32 = 0xffffffffu;

var<workgroup> tree_value: array<f32, WG>;
var<workgroup> tree_index: array<u32, WG>;

// Whether candidate (v, i) beats (best, best_i) for max: larger, or equal and earlier.
fn beats(v: f32, i: u32, best: f32, best_i: u32) -> bool {
  return i != NONE && (best_i == NONE || v > best || (v == best && i < best_i));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) groups: vec3<u32>) {
  let row = wid.x + wid.y * groups.x;
  if (row >= p.rows) { return; }
  let start = row * p.cols;
  let end = min(start + p.cols, p.n);
  let t = lid.x;

  // Each lane walks its stride in increasing order, so strict > keeps its first maximum.
  var value = 0.0;
  var index = NONE;
  for (var i = start + t; i < end; i += WG) {
    let v = x[i];
    if (OP == 0u) {
      value += v;
    } else if (beats(v, i - start, value, index)) {
      value = v;
      index = i - start;
    }
  }
  tree_value[t] = value;
  tree_index[t] = index;
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if (t < stride) {
      if (OP == 0u) {
        tree_value[t] += tree_value[t + stride];
      } else if (beats(tree_value[t + stride], tree_index[t + stride], tree_value[t], tree_index[t])) {
        tree_value[t] = tree_value[t + stride];
        tree_index[t] = tree_index[t + stride];
      }
    }
  }
  if (t == 0u) {
    out[row] = tree_value[0] * p.scale;
    out_index[row] = tree_index[0];
  }
}
