// softmax (LOG false) or log-softmax (LOG true) of each row of x [rows, cols], one workgroup per
// row. Each lane keeps an online (max, Σ exp(x − max)) pair, rescaling the sum when its max grows,
// so the row is read twice (reduce, then write) instead of three times.
struct Params {
  rows: u32,
  cols: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const LOG: bool = false;
// A power of two (the tree below halves it).
const WG: u32 = 64u;
// Start below every finite value; a row of only -inf then gives NaN, as in PyTorch.
const LOWEST: f32 = -3.4028234663852886e38;

var<workgroup> tree_max: array<f32, WG>;
var<workgroup> tree_sum: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) groups: vec3<u32>) {
  let row = wid.x + wid.y * groups.x;
  if (row >= p.rows) { return; }
  let start = row * p.cols;
  let t = lid.x;

  var m = LOWEST;
  var s = 0.0;
  for (var j = t; j < p.cols; j += WG) {
    let v = x[start + j];
    // Rescale only when the max grows (rarely, after the first few elements): one exp per element.
    if (v > m) {
      s *= exp(m - v);
      m = v;
    }
    s += exp(v - m);
  }
  tree_max[t] = m;
  tree_sum[t] = s;
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if (t < stride) {
      let m_other = tree_max[t + stride];
      let m_new = max(tree_max[t], m_other);
      tree_sum[t] = tree_sum[t] * exp(tree_max[t] - m_new) + tree_sum[t + stride] * exp(m_other - m_new);
      tree_max[t] = m_new;
    }
  }
  workgroupBarrier();
  let row_max = tree_max[0];
  let row_sum = tree_sum[0];
  let log_sum = log(row_sum);
  let inv_sum = 1.0 / row_sum;
  for (var j = t; j < p.cols; j += WG) {
    let shifted = x[start + j] - row_max;
    out[start + j] = select(exp(shifted) * inv_sum, shifted - log_sum, LOG);
  }
}
