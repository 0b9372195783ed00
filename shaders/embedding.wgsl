// out[n, :] = table[ids[n] - first, :] widened to f32, for table [vocab, dim] in T (f32 or f16)
// holding rows first.. of a larger matrix (first = 0 for a whole table). An id outside the table
// yields a zero row rather than a read past the buffer; callers validate ids on the host (the
// tokenizer path does), so this only keeps a bad id from reading foreign memory. With BLOCK the
// table is one block of a matrix split across bindings: ids outside it are left to the other blocks.
struct Params {
  n: u32,
  dim: u32,
  vocab: u32,
  first: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<T>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

alias T = f32;
const WG: u32 = 256u;
const BLOCK: bool = false;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i >= p.n) { return; }
  let position = i / p.dim;
  let column = i - position * p.dim;
  // Unsigned: an id below this table's first row wraps past p.vocab.
  let row = ids[position] - p.first;
  if (row < p.vocab) {
    out[i] = f32(table[row * p.dim + column]);
  } else if (!BLOCK) {
    out[i] = 0.0;
  }
}
