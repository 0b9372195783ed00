// C[z] = alpha · A[z] · B[z]ᵀ  (+ C[z] when p.accumulate ≠ 0), accumulated in f32, for one or
// two rows of A: the decode step's x·Wᵀ, where x is [M, K] f32 and W is [N, K] in f32 or half
// precision, both contiguous along K, with K a multiple of what one 16-byte load of W holds (the
// host checks this and runs the rows kernel otherwise). Half-precision W is unpacked from its raw
// bits, so the shader declares no half-precision types (nor names them: the shader loader
// enables that extension when the word appears). Dispatch: x over column blocks of WG·TN, y over
// row blocks of TM, z over the batch.
//
// Made for CPU adapters (lavapipe), where a product this thin is bound by loading W once, and
// every storage load with a non-constant address becomes a branchy per-lane loop with a bounds
// check per 32-bit word, while arithmetic and constant-lane subgroup shuffles are cheap. So each
// lane owns TN rows of W and walks along them with 16-byte loads (4 f32, or 8 halves as packed
// pairs, which halves the per-word work: a vec4 of halves costs as many per-lane steps as a vec4
// of f32). x is read in the same pieces: for every 8 pieces each of 8 subgroup lanes loads one
// piece per row and subgroupShuffle hands it to the others. Measured on llvmpipe, TN = 1 beats
// wider blocks (their live pieces spill) and the kernel beats the rows kernel only for M ≤ 2.
// Needs a subgroup size of at least 8.
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
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
// W's raw bits, 16 bytes per load: bitcast to 4 f32, or unpacked from 8 halves (HALF).
@group(0) @binding(2) var<storage, read> b: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

const HALF: bool = false;
const WG: u32 = 8u;
const TM: u32 = 8u;
const TN: u32 = 1u;
// Pieces of k shared through one round of shuffles (the subgroup lanes that load them).
const LANES: u32 = 8u;
// A piece is what one 16-byte load of W holds: 4 k of f32, 8 k of halves; as P vec4s of f32.
const P: u32 = select(1u, 2u, HALF);
const PIECE_K: u32 = 4u * P;

alias Piece = array<vec4<f32>, P>;

/** W's values for piece q, counted in pieces from the start of the buffer. */
fn load_w(q: u32) -> Piece {
  let v = b[q];
  var w: Piece;
  if (HALF) {
    w[0] = vec4(unpack2x16float(v.x), unpack2x16float(v.y));
    w[P - 1u] = vec4(unpack2x16float(v.z), unpack2x16float(v.w));
  } else {
    w[0] = bitcast<vec4<f32>>(v);
  }
  return w;
}

fn load_x(q: u32) -> Piece {
  var x: Piece;
  for (var h = 0u; h < P; h++) { x[h] = a[P * q + h]; }
  return x;
}

fn dot_piece(x: Piece, w: Piece) -> f32 {
  var sum = dot(x[0], w[0]);
  for (var h = 1u; h < P; h++) { sum += dot(x[h], w[h]); }
  return sum;
}

// One piece of k for every owned column: each W piece this lane loads meets all TM rows of x.
fn piece_step(acc: ptr<function, array<array<f32, TN>, TM>>, x: array<Piece, TM>, w_at: array<u32, TN>, q: u32) {
  for (var j = 0u; j < TN; j++) {
    let w = load_w(w_at[j] + q);
    for (var i = 0u; i < TM; i++) { (*acc)[i][j] += dot_piece(x[i], w); }
  }
}

// The x pieces lane `u` loaded (a constant once inlined, which keeps the shuffle cheap).
fn from_lane(xs: ptr<function, array<Piece, TM>>, u: u32) -> array<Piece, TM> {
  var x: array<Piece, TM>;
  for (var i = 0u; i < TM; i++) {
    for (var h = 0u; h < P; h++) { x[i][h] = subgroupShuffle((*xs)[i][h], u); }
  }
  return x;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32,
        @builtin(subgroup_invocation_id) sg_lane: u32) {
  let row0 = wg.y * TM;
  let col0 = wg.x * WG * TN + lane;
  // Piece indices of the rows' starts. Rows and columns past the edge read the last valid one
  // instead of branching in the k loop; their sums are not stored.
  var x_at: array<u32, TM>;
  for (var i = 0u; i < TM; i++) { x_at[i] = (p.a_offset + wg.z * p.a_batch_stride + min(row0 + i, p.m - 1u) * p.a_row_stride) / PIECE_K; }
  var w_at: array<u32, TN>;
  for (var j = 0u; j < TN; j++) { w_at[j] = (p.b_offset + wg.z * p.b_batch_stride + min(col0 + j * WG, p.n - 1u) * p.b_col_stride) / PIECE_K; }

  var acc: array<array<f32, TN>, TM>;
  var xs: array<Piece, TM>;
  let pieces = p.k / PIECE_K;
  let shared_end = pieces - pieces % LANES;
  let mine = min(sg_lane, LANES - 1u);
  for (var q0 = 0u; q0 < shared_end; q0 += LANES) {
    for (var i = 0u; i < TM; i++) { xs[i] = load_x(x_at[i] + q0 + mine); }
    piece_step(&acc, from_lane(&xs, 0u), w_at, q0);
    piece_step(&acc, from_lane(&xs, 1u), w_at, q0 + 1u);
    piece_step(&acc, from_lane(&xs, 2u), w_at, q0 + 2u);
    piece_step(&acc, from_lane(&xs, 3u), w_at, q0 + 3u);
    piece_step(&acc, from_lane(&xs, 4u), w_at, q0 + 4u);
    piece_step(&acc, from_lane(&xs, 5u), w_at, q0 + 5u);
    piece_step(&acc, from_lane(&xs, 6u), w_at, q0 + 6u);
    piece_step(&acc, from_lane(&xs, 7u), w_at, q0 + 7u);
  }
  // The last pieces % 8 pieces load x directly.
  for (var q = shared_end; q < pieces; q++) {
    for (var i = 0u; i < TM; i++) { xs[i] = load_x(x_at[i] + q); }
    piece_step(&acc, xs, w_at, q);
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
