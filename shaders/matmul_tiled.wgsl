// C[z] = alpha · op(A[z]) · op(B[z])  (+ C[z] when p.accumulate ≠ 0), accumulated in f32.
// op(A) is [M, K], op(B) is [K, N]; transposes arrive as strides. Dispatch: x over column tiles
// of TILE_N, y over row tiles of TILE_M, z over the batch.
//
// The variant for real GPUs: the classic workgroup-shared tiling. Each workgroup stages a
// TILE_K-deep slab of A and B in workgroup memory (loaded cooperatively, reading along whichever
// dimension is contiguous in memory so neighbouring invocations read neighbouring addresses) and
// every invocation accumulates a TM × TN block in registers, strided by the workgroup size so
// neighbouring invocations read neighbouring words of the tiles.
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
const TILE_M: u32 = 64u;
const TILE_N: u32 = 64u;
const TILE_K: u32 = 16u;
const WG_M: u32 = 16u;
const WG_N: u32 = 16u;
const TM: u32 = TILE_M / WG_M;
const TN: u32 = TILE_N / WG_N;
const THREADS: u32 = WG_M * WG_N;

var<workgroup> a_tile: array<f32, TILE_K * TILE_M>; // [k][m]
var<workgroup> b_tile: array<f32, TILE_K * TILE_N>; // [k][n]

@compute @workgroup_size(WG_N, WG_M)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let row0 = wg.y * TILE_M;
  let col0 = wg.x * TILE_N;
  let a_base = p.a_offset + wg.z * p.a_batch_stride;
  let b_base = p.b_offset + wg.z * p.b_batch_stride;
  let a_k_fastest = p.a_k_stride == 1u;
  let b_k_fastest = p.b_k_stride == 1u;

  var acc: array<array<f32, TN>, TM>;
  for (var k0 = 0u; k0 < p.k; k0 += TILE_K) {
    for (var e = li; e < TILE_K * TILE_M; e += THREADS) {
      var kk = e / TILE_M;
      var mm = e % TILE_M;
      if (a_k_fastest) { kk = e % TILE_K; mm = e / TILE_K; }
      let row = row0 + mm;
      let k = k0 + kk;
      var value = 0.0;
      if (row < p.m && k < p.k) { value = f32(a[a_base + row * p.a_row_stride + k * p.a_k_stride]); }
      a_tile[kk * TILE_M + mm] = value;
    }
    for (var e = li; e < TILE_K * TILE_N; e += THREADS) {
      var kk = e / TILE_N;
      var nn = e % TILE_N;
      if (b_k_fastest) { kk = e % TILE_K; nn = e / TILE_K; }
      let col = col0 + nn;
      let k = k0 + kk;
      var value = 0.0;
      if (col < p.n && k < p.k) { value = f32(b[b_base + k * p.b_k_stride + col * p.b_col_stride]); }
      b_tile[kk * TILE_N + nn] = value;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TILE_K; kk++) {
      var av: array<f32, TM>;
      for (var i = 0u; i < TM; i++) { av[i] = a_tile[kk * TILE_M + lid.y + i * WG_M]; }
      for (var j = 0u; j < TN; j++) {
        let bv = b_tile[kk * TILE_N + lid.x + j * WG_N];
        for (var i = 0u; i < TM; i++) { acc[i][j] = fma(av[i], bv, acc[i][j]); }
      }
    }
    workgroupBarrier();
  }

  let c_base = wg.z * p.m * p.n;
  for (var i = 0u; i < TM; i++) {
    let row = row0 + lid.y + i * WG_M;
    for (var j = 0u; j < TN; j++) {
      let col = col0 + lid.x + j * WG_N;
      if (row < p.m && col < p.n) {
        let at = c_base + row * p.c_row_stride + col * p.c_col_stride;
        var value = p.alpha * acc[i][j];
        if (p.accumulate != 0u) { value += c[at]; }
        c[at] = value;
      }
    }
  }
}
