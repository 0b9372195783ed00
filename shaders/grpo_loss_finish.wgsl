// Folds grpo_loss's per-row stats into the loss (divided by the loss type's normaliser), the
// normaliser's reciprocal (which scales the saved per-token gradient in the backward), and the
// metrics TRL logs. One workgroup; a batch has a few dozen rows.
//
// metrics: [kl, clip low mean, clip high mean, clip region mean, clip low min, clip high max, φ mean]
struct Params {
  rows: u32,
  // The normaliser is `scale`, times max(Σ mask, 1) when PER_TOKEN (bnpo's local token count).
  scale: f32,
  // Written where TRL's nanmin/nanmax find no row with tokens (WGSL constants cannot be NaN).
  nan: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> row_stats: array<f32>;
@group(0) @binding(2) var<storage, read_write> loss: array<f32>;
@group(0) @binding(3) var<storage, read_write> inv_norm: array<f32>;
@group(0) @binding(4) var<storage, read_write> metrics: array<f32>;

const WG: u32 = 64u;
const PER_TOKEN: bool = false;
const STATS: u32 = 8u;
// Above any clip fraction (≤ 1) and below any (≥ 0): "no row seen" for the min and the max.
const NO_MIN: f32 = 2.0;
const NO_MAX: f32 = -1.0;

// x: Σ row loss, y: Σ n, z: Σ m·K·W, w: Σ clip count; then Σ low, Σ high, Σ region, Σ φ.
var<workgroup> tree_a: array<vec4<f32>, WG>;
var<workgroup> tree_b: array<vec4<f32>, WG>;
// Min over rows of low/count, max over rows of high/count.
var<workgroup> tree_extremes: array<vec2<f32>, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  var a = vec4<f32>(0.0);
  var b = vec4<f32>(0.0);
  var extremes = vec2<f32>(NO_MIN, NO_MAX);
  for (var r = lid; r < p.rows; r += WG) {
    let s = r * STATS;
    a += vec4<f32>(row_stats[s], row_stats[s + 1u], row_stats[s + 2u], row_stats[s + 3u]);
    b += vec4<f32>(row_stats[s + 4u], row_stats[s + 5u], row_stats[s + 6u], row_stats[s + 7u]);
    // TRL's per-row mean divides by the row's count unclamped: an empty row is NaN and nanmin skips it.
    let count = row_stats[s + 3u];
    if (count > 0.0) {
      extremes = vec2<f32>(min(extremes.x, row_stats[s + 4u] / count), max(extremes.y, row_stats[s + 5u] / count));
    }
  }
  tree_a[lid] = a;
  tree_b[lid] = b;
  tree_extremes[lid] = extremes;
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if (lid < stride) {
      tree_a[lid] += tree_a[lid + stride];
      tree_b[lid] += tree_b[lid + stride];
      let other = tree_extremes[lid + stride];
      tree_extremes[lid] = vec2<f32>(min(tree_extremes[lid].x, other.x), max(tree_extremes[lid].y, other.y));
    }
  }
  if (lid == 0u) {
    let totals = tree_a[0];
    let clips = tree_b[0];
    var norm = p.scale;
    if (PER_TOKEN) { norm *= max(totals.y, 1.0); }
    loss[0] = totals.x / norm;
    inv_norm[0] = 1.0 / norm;
    let count = max(totals.w, 1.0);
    metrics[0] = totals.z / max(totals.y, 1.0);
    metrics[1] = clips.x / count;
    metrics[2] = clips.y / count;
    metrics[3] = clips.z / count;
    metrics[4] = select(tree_extremes[0].x, p.nan, tree_extremes[0].x == NO_MIN);
    metrics[5] = select(tree_extremes[0].y, p.nan, tree_extremes[0].y == NO_MAX);
    metrics[6] = clips.w / f32(p.rows);
  }
}
