// out[n, :] = table[ids[n] - first, :] widened to f32, for table [vocab, dim] in T (f32 or f16)
// holding rows first.. of a larger matrix (first = 0 for a whole table). An f32 table whose rows are
// a multiple of 4 wide is copied 4 values at a time (T and O vec4<f32>, n and dim counted in
// vec4s): on lavapipe every lane's load and store is a gather or scatter of its own, so one of 16
// bytes moves four times what one of 4 does (a layer's reads of stored projections, and the
// gathers between packed and padded rows, are rows of 192–1 536 values). An id outside the table
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
@group(0) @binding(3) var<storage, read_write> out: array<O>;

alias T = f32;
alias O = f32;
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
    out[i] = O(table[row * p.dim + column]);
  } else if (!BLOCK) {
    out[i] = O();
  }
}
