// C = alpha · A · B  (+ C when p.accumulate ≠ 0), accumulated in f32, for A [M, K] f32 read
// through a uniform binding and B the model's weight W in f32 or half precision, stored either way:
//   W_ALONG_K: W [N, K] contiguous along K, B = Wᵀ (the forward's x·Wᵀ);
//   otherwise: W [K, N] contiguous along N, B = W (the backward's dX = g·W).
// W is read in 16-byte loads (8-byte ones for half W along N), so K (along K) or N (along N), its
// offset and its row stride are multiples of what one load holds, 4 f32, 8 halves or 4 halves along
// N, and K a multiple of 4 (the host checks this and runs the rows kernel otherwise). A uniform
// binding holds at most 64 KiB of A (a window).
// Where a window holds TM rows or more, a dispatch covers the rows of one window in blocks of TM;
// where it holds fewer (K = 1 536 fits 10 rows in f32; a decode batch of 32 rows at K = 576 fits
// 28), a dispatch binds up to four windows of WINDOW_ROWS rows and covers one block of TM rows
// across them, so each piece of W a lane loads feeds TM rows rather than one window's few. The
// host dispatches until every row is covered. Half-precision W is unpacked from its raw bits, as
// in matmul_skinny.wgsl. Dispatch: x over column blocks of WG·COLS, y over row blocks of TM.
//
// Made for CPU adapters (lavapipe). There every load whose address is not a constant, from a
// storage or a uniform buffer, becomes a per-lane gather (~20 instructions per word for 8 lanes),
// even when all lanes load the same address: its loop counter is a vector to lavapipe. All lanes
// of a workgroup share its TM rows, so every A value here is the same in all of them, and
// subgroupBroadcast from lane 0 (SUBGROUPS) leaves LLVM only lane 0's load to do: the k loop's
// instructions fell from ~4 900 to ~3 500 for 384 multiply-adds per lane (llvmpipe's assembly).
// Without subgroups (SwiftShader) every lane loads it. A comes through a uniform binding: from
// storage each lane's load is a loop with a bounds-check branch, which LLVM does not trim to lane
// 0 (2–3× slower, bench/README.md). What is left per lane is loading its pieces of W (each load
// feeding TM·4 or TM·8 multiply-adds) and the arithmetic. Stores are per-lane scatters as well, so
// where C allows (C_VEC4) a row's 4 sums of a lane leave in one 16-byte store rather than four.
//
// Each lane owns 4 consecutive columns and keeps a row's sums of 4 columns in one vec4, so one
// row's update is one vector-matrix product: along K,
// x · mat4x4(w_0, …, w_3) is the vec4 of dot(x, w_j) for the lane's rows w_j of W; along N,
// mat4x4(w_0, …, w_3) · x is Σ_r x_r·w_r for 4 consecutive rows w_r of W at the lane's columns.
// That keeps the loop over rows short enough for lavapipe's NIR to unroll. (A loop it leaves
// rolled keeps a register array it indexes in memory: the same kernel with per-column scalar sums
// ran at about half this speed.)
//
// The product can carry a low-rank term (LOW_STEPS > 0), h [M, r] read through a uniform binding
// like A, r = 4·LOW_STEPS, and L in f32: along K, C = alpha·A·Wᵀ + scale·h·Lᵀ (+ C) for L [N, r]
// (LoRA's y = x·W0ᵀ + s·(x·Aᵀ)·Bᵀ with h = x·Aᵀ, in the base product's dispatch); along N,
// C = alpha·A·W + scale·h·L (+ C) for L [r, N] (LoRA's backward dx = g·W0 + dh·A). The term is
// summed as this kernel sums that product on its own (vec4 steps from zero) and added after
// alpha·A·W(ᵀ) (+ C), so the result is bit for bit that of the two products in turn. Without the
// term the host binds buffers it already binds in its two slots, which are never read.
struct Params {
  // Rows of this dispatch, and where its row 0 is in C: C[row][col] at c_offset + row · c_row_stride + col · c_col_stride.
  m: u32,
  n: u32,
  k: u32,
  // Elements from one row of A to the next, within a window (a multiple of 4).
  a_row_stride: u32,
  // Elements from one row of W to the next as stored, and before W's first value (multiples of a load).
  b_row_stride: u32,
  b_offset: u32,
  c_offset: u32,
  c_row_stride: u32,
  c_col_stride: u32,
  accumulate: u32,
  // The low-rank term: h's row of this dispatch's row 0, and the term's scale.
  low_row0: u32,
  // Vec4s of the (only) window before its first row: a last window bound to end where A's buffer
  // ends, because its power-of-two binding from the row would pass it; 0 otherwise.
  a_shift: u32,
  alpha: f32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> a: array<vec4<f32>, WINDOW>;
// W's raw bits, 16 bytes per load: bitcast to 4 f32, or unpacked from 8 halves (HALF).
@group(0) @binding(2) var<storage, read> b: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<uniform> low_h: array<vec4<f32>, LOW_WINDOW>;
@group(0) @binding(5) var<storage, read> low_w: array<vec4<f32>>;
// The dispatch's second to fourth windows of A (WINDOWS > 1); otherwise bindings of the first.
@group(0) @binding(6) var<uniform> a_second: array<vec4<f32>, WINDOW>;
@group(0) @binding(7) var<uniform> a_third: array<vec4<f32>, WINDOW>;
@group(0) @binding(8) var<uniform> a_fourth: array<vec4<f32>, WINDOW>;
// The same bits of W 8 bytes per load, for half W read along N (HALF_ALONG_N).
@group(0) @binding(9) var<storage, read> b_quarter: array<vec2<u32>>;
// C as vec4s, where a lane's 4 columns are contiguous in C and start on a 16-byte boundary (C_VEC4).
@group(0) @binding(10) var<storage, read_write> c4: array<vec4<f32>>;

const HALF: bool = false;
const W_ALONG_K: bool = true;
const WG: u32 = 8u;
const TM: u32 = 24u;
// vec4s in a uniform window (its byte size / 16; the host binds exactly that many bytes).
const WINDOW: u32 = 4096u;
// Windows of A per dispatch (1–4), and rows of A each holds where there are several (row i of the
// block is row i % WINDOW_ROWS of window i / WINDOW_ROWS: constant once the row loop is unrolled).
const WINDOWS: u32 = 1u;
const WINDOW_ROWS: u32 = 24u;
// The low-rank term's rank / 4 (0: none), and the vec4s of h's uniform binding.
const LOW_STEPS: u32 = 0u;
const LOW_WINDOW: u32 = 1u;
// Whether the adapter has subgroups: A's and h's values are then loaded by lane 0 and broadcast.
const SUBGROUPS: bool = true;
// Half W along N is read 4 halves (8 bytes) at a time, so that a lane owns 4 columns and a row's
// sums are one vec4 as with f32 W. With 16-byte loads a lane owned 8 columns: two vec4 sums per
// row doubled what the row loop keeps live, and the g·W products ran at half f32's speed.
const HALF_ALONG_N: bool = HALF && !W_ALONG_K;
// What one load of W holds as P vec4s of f32: 4 f32, 8 halves (16 bytes) or, along N, 4 halves.
const P: u32 = select(1u, 2u, HALF && W_ALONG_K);
// Elements of W per load.
const W_LOAD: u32 = 4u * P;
// Along K a load spans P vec4s of k; along N a lane's 4 columns (4 k per step, one load per k).
const STEP_K: u32 = select(4u, 4u * P, W_ALONG_K);
const COLS: u32 = 4u;
// Whether the lane's 4 sums of a row are stored as one vec4 through c4 (C contiguous along N, N
// and C's row stride multiples of 4, so N % 4 = 0 keeps a lane's 4 columns all in or all out):
// one store per row instead of four, each of which lavapipe runs as a per-lane loop with a bounds
// check. The binding of c (or c4) left unused is a scratch buffer the host binds.
const C_VEC4: bool = false;

/** Part h of a piece of W's raw bits as 4 f32: the piece itself, or its first or last 4 halves. */
fn part(v: vec4<u32>, h: u32) -> vec4<f32> {
  if (!HALF) { return bitcast<vec4<f32>>(v); }
  if (h == 0u) { return vec4(unpack2x16float(v.x), unpack2x16float(v.y)); }
  return vec4(unpack2x16float(v.z), unpack2x16float(v.w));
}

/** Load `at` of W's raw bits (in loads of W_LOAD elements); 8-byte loads fill its first half. */
fn w_load(at: u32) -> vec4<u32> {
  if (HALF_ALONG_N) { return vec4(b_quarter[at], 0u, 0u); }
  return b[at];
}

/** Vec4 `at` of the rows of the window that holds the block's row i (i is constant once unrolled, so no branch is left). */
fn a_load(i: u32, at: u32) -> vec4<f32> {
  if (WINDOWS == 1u || i < WINDOW_ROWS) { return a[at]; }
  if (WINDOWS == 2u || i < 2u * WINDOW_ROWS) { return a_second[at]; }
  if (WINDOWS == 3u || i < 3u * WINDOW_ROWS) { return a_third[at]; }
  return a_fourth[at];
}

/** A value every lane of the workgroup loaded from the same address, as lane 0 loaded it (see above). */
fn from_lane0(v: vec4<f32>) -> vec4<f32> {
  if (SUBGROUPS) { return subgroupBroadcast(v, 0u); }
  return v;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let row0 = wg.y * TM;
  let col0 = (wg.x * WG + lane) * COLS;
  // Rows and columns past the edge read the last valid ones instead of branching in the k loop;
  // their sums are not stored. Load j of step q is at w_at[j] + q · w_step (in loads): along K the
  // lane's 4 rows of W, along N the 4 rows of W at k = 4q + j, at the lane's columns.
  var w_at: array<u32, 4>;
  var w_step: u32;
  if (W_ALONG_K) {
    for (var j = 0u; j < 4u; j++) { w_at[j] = (p.b_offset + min(col0 + j, p.n - 1u) * p.b_row_stride) / W_LOAD; }
    w_step = 1u;
  } else {
    for (var j = 0u; j < 4u; j++) { w_at[j] = (p.b_offset + j * p.b_row_stride + min(col0, p.n - COLS)) / W_LOAD; }
    // A step is 4 rows of W.
    w_step = 4u * p.b_row_stride / W_LOAD;
  }
  let x_stride = p.a_row_stride / 4u;

  var acc: array<vec4<f32>, TM>;
  let steps = p.k / STEP_K;
  for (var q = 0u; q < steps; q++) {
    let v0 = w_load(w_at[0] + q * w_step);
    let v1 = w_load(w_at[1] + q * w_step);
    let v2 = w_load(w_at[2] + q * w_step);
    let v3 = w_load(w_at[3] + q * w_step);
    let w_lo = mat4x4<f32>(part(v0, 0u), part(v1, 0u), part(v2, 0u), part(v3, 0u));
    let w_hi = mat4x4<f32>(part(v0, 1u), part(v1, 1u), part(v2, 1u), part(v3, 1u));
    for (var i = 0u; i < TM; i++) {
      // A row past the dispatch's last reads past A's rows in its window's binding (whatever the
      // binding holds there, or zero past its end: WGSL's out-of-bounds loads do not fault); its
      // sums are not stored.
      let x_row = select(i % WINDOW_ROWS, row0 + i, WINDOWS == 1u);
      let x_at = p.a_shift + x_row * x_stride + (STEP_K / 4u) * q;
      let x = from_lane0(a_load(i, x_at));
      if (W_ALONG_K) {
        var sums = x * w_lo;
        if (HALF) { sums += from_lane0(a_load(i, x_at + 1u)) * w_hi; }
        acc[i] += sums;
      } else {
        acc[i] += w_lo * x;
      }
    }
  }

  var low: array<vec4<f32>, TM>;
  if (LOW_STEPS > 0u) {
    for (var q = 0u; q < LOW_STEPS; q++) {
      // Along K, L [N, r]: the lane's 4 rows of L at ranks 4q…4q+3, and a row's update is h·mat4x4
      // as x·w_lo above; along N, L [r, N]: its rows 4q…4q+3 at the lane's columns (clamped as W's
      // are), and the update is mat4x4·h as w_lo·x above.
      var l_at: array<u32, 4>;
      for (var j = 0u; j < 4u; j++) {
        l_at[j] = select((4u * q + j) * (p.n / 4u) + min(col0, p.n - COLS) / 4u, min(col0 + j, p.n - 1u) * LOW_STEPS + q, W_ALONG_K);
      }
      let l = mat4x4<f32>(low_w[l_at[0]], low_w[l_at[1]], low_w[l_at[2]], low_w[l_at[3]]);
      for (var i = 0u; i < TM; i++) {
        // Rows past the dispatch's last read past h's rows, as they do A's; their sums are not stored.
        let h = from_lane0(low_h[(p.low_row0 + row0 + i) * LOW_STEPS + q]);
        if (W_ALONG_K) { low[i] += h * l; } else { low[i] += l * h; }
      }
    }
  }

  for (var i = 0u; i < TM; i++) {
    let row = row0 + i;
    if (row >= p.m) { break; }
    if (C_VEC4) {
      if (col0 < p.n) {
        let at = (p.c_offset + row * p.c_row_stride + col0) / 4u;
        var value = p.alpha * acc[i];
        if (p.accumulate != 0u) { value += c4[at]; }
        if (LOW_STEPS > 0u) { value = p.scale * low[i] + value; }
        c4[at] = value;
      }
      continue;
    }
    for (var j = 0u; j < COLS; j++) {
      let col = col0 + j;
      if (col < p.n) {
        let at = p.c_offset + row * p.c_row_stride + col * p.c_col_stride;
        var value = p.alpha * acc[i][j];
        if (p.accumulate != 0u) { value += c[at]; }
        if (LOW_STEPS > 0u) { value = p.scale * low[i][j] + value; }
        c[at] = value;
      }
    }
  }
}
