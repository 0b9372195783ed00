// C[z] = alpha · op(A[z]) · op(B[z])  (+ C[z] when p.accumulate ≠ 0), accumulated in f32.
// op(A) is [M, K], op(B) is [K, N]; transposes arrive as strides, so one pipeline serves all four
// layouts. Dispatch: x over column blocks of WG·TN, y over row blocks of TM, z over the batch.
//
// The variant for CPU adapters (lavapipe). There a workgroup runs on one thread with invocations
// as 8-wide SIMD lanes, and every storage load whose address is not a constant costs a branchy
// per-lane gather, while arithmetic and subgroup shuffles with a constant lane are cheap. So
// loads are what to save: all lanes of a workgroup share the same TM rows, and for each chunk of
// 8 k the 8 lanes of a subgroup load one A value each per row and pass them round with
// subgroupShuffle (TM loads per chunk instead of 8·TM); each lane owns TN columns strided by WG,
// and every B value it loads feeds TM multiply-adds. Needs a subgroup size of at least 8.
struct Params {
  m: u32,
  n: u32,
  k: u32,
  a_row_stride: u32,
  a_k_stride: u32,
  b_k_stride: u32,
  b_col_stride: u32,
  a_batch_stride: u32,
  b_batch_stride: u32,
  // Elements before A's and B's first value (a range of K: a block of the sum over k).
  a_offset: u32,
  b_offset: u32,
  // Where C[row][col] lives: row · c_row_stride + col · c_col_stride (n, 1; or 1, m to write Cᵀ).
  c_row_stride: u32,
  c_col_stride: u32,
  accumulate: u32,
  alpha: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<TA>;
@group(0) @binding(2) var<storage, read> b: array<TB>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

alias TA = f32;
alias TB = f32;
const WG: u32 = 64u;
const TM: u32 = 16u;
const TN: u32 = 4u;
const CHUNK: u32 = 8u;

// One k step: B values for this lane's columns times A values broadcast from lane `u` (a constant
// once inlined and unrolled, which keeps the shuffle cheap).
fn k_step(acc: ptr<function, array<array<f32, TN>, TM>>, a_chunk: ptr<function, array<f32, TM>>, b_at: array<u32, TN>, kk: u32, u: u32) {
  var bv: array<f32, TN>;
  for (var j = 0u; j < TN; j++) { bv[j] = f32(b[b_at[j] + kk * p.b_k_stride]); }
  for (var i = 0u; i < TM; i++) {
    let av = subgroupShuffle((*a_chunk)[i], u);
    for (var j = 0u; j < TN; j++) { (*acc)[i][j] = fma(av, bv[j], (*acc)[i][j]); }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32,
        @builtin(subgroup_invocation_id) sg_lane: u32) {
  let row0 = wg.y * TM;
  let col0 = wg.x * WG * TN + lane;
  // Rows and columns past the edge read the last valid one instead of branching in the k loop;
  // their sums are not stored.
  var a_at: array<u32, TM>;
  for (var i = 0u; i < TM; i++) { a_at[i] = p.a_offset + wg.z * p.a_batch_stride + min(row0 + i, p.m - 1u) * p.a_row_stride; }
  var b_at: array<u32, TN>;
  for (var j = 0u; j < TN; j++) { b_at[j] = p.b_offset + wg.z * p.b_batch_stride + min(col0 + j * WG, p.n - 1u) * p.b_col_stride; }

  var acc: array<array<f32, TN>, TM>;
  var a_chunk: array<f32, TM>;
  let full_chunks_end = p.k - p.k % CHUNK;
  for (var k0 = 0u; k0 < full_chunks_end; k0 += CHUNK) {
    let ka = (k0 + min(sg_lane, CHUNK - 1u)) * p.a_k_stride;
    for (var i = 0u; i < TM; i++) { a_chunk[i] = f32(a[a_at[i] + ka]); }
    k_step(&acc, &a_chunk, b_at, k0, 0u);
    k_step(&acc, &a_chunk, b_at, k0 + 1u, 1u);
    k_step(&acc, &a_chunk, b_at, k0 + 2u, 2u);
    k_step(&acc, &a_chunk, b_at, k0 + 3u, 3u);
    k_step(&acc, &a_chunk, b_at, k0 + 4u, 4u);
    k_step(&acc, &a_chunk, b_at, k0 + 5u, 5u);
    k_step(&acc, &a_chunk, b_at, k0 + 6u, 6u);
    k_step(&acc, &a_chunk, b_at, k0 + 7u, 7u);
  }
  // The last K % 8 steps load A directly.
  for (var kk = full_chunks_end; kk < p.k; kk++) {
    var bv: array<f32, TN>;
    for (var j = 0u; j < TN; j++) { bv[j] = f32(b[b_at[j] + kk * p.b_k_stride]); }
    for (var i = 0u; i < TM; i++) {
      let av = f32(a[a_at[i] + kk * p.a_k_stride]);
      for (var j = 0u; j < TN; j++) { acc[i][j] = fma(av, bv[j], acc[i][j]); }
    }
  }

  let c_base = wg.z * p.m * p.n;
  for (var i = 0u; i < TM; i++) {
    let row = row0 + i;
    if (row >= p.m) { break; }
    for (var j = 0u; j < TN; j++) {
      let col = col0 + j * WG;
      if (col < p.n) {
        let at = c_base + row * p.c_row_stride + col * p.c_col_stride;
        var value = p.alpha * acc[i][j];
        if (p.accumulate != 0u) { value += c[at]; }
        c[at] = value;
      }
    }
  }
}
