// dlogits[r, v] = g[r]·(1[v = target[r]] − exp(logits[r, v] − logsumexp[r])): the gradient of
// token log-probs, recomputing the softmax from the logits and the forward's saved logsumexp.
// One workgroup per row of a [rows, vocab] chunk; targets, logsumexp and g are indexed from
// row_offset. With ACCUMULATE the gradient is added to dlogits instead of overwriting it.
// dlogits is stored row-major, or (block_width > 0) in blocks of block_width columns, one after
// another, each block [rows, width] row-major (the last may be narrower): a product over the
// vocabulary can then read a block's rows through uniform windows (ops/matmul.ts, matmulKBlocksInto).
struct Params {
  rows: u32,
  vocab: u32,
  row_offset: u32,
  block_width: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read> logsumexp: array<f32>;
@group(0) @binding(4) var<storage, read> grad: array<f32>;
@group(0) @binding(5) var<storage, read_write> dlogits: array<f32>;

const WG: u32 = 64u;
const ACCUMULATE: bool = false;

/** Where dlogits[row, v] is stored. */
fn at(row: u32, v: u32) -> u32 {
  if (p.block_width == 0u) { return row * p.vocab + v; }
  let start = v - v % p.block_width;
  return start * p.rows + row * min(p.block_width, p.vocab - start) + v - start;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * groups.x;
  if (row >= p.rows) { return; }
  let base = row * p.vocab;
  let g = grad[p.row_offset + row];
  // Masked tokens (g = 0) add nothing: skip reading their row.
  if (ACCUMULATE && g == 0.0) { return; }
  let lse = logsumexp[p.row_offset + row];
  let token = targets[p.row_offset + row];
  for (var v = lid; v < p.vocab; v += WG) {
    var d = -g * exp(logits[base + v] - lse);
    if (v == token) { d += g; }
    let out = at(row, v);
    if (ACCUMULATE) { d += dlogits[out]; }
    dlogits[out] = d;
  }
}
