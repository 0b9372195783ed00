// Grouped-query attention of one new position per sequence (decode from a KV cache), for runs of
// sequences whose keys and values before `shared_length` are the same (the copies of one prefilled
// prompt that a group of samples continues): a workgroup takes one run and one kv head, reads each
// shared key once for all the run's sequences, and each sequence's own keys for its rows alone.
//
// As in attention_forward, LANES invocations split the keys and carry their own online softmax,
// merged at the end; a sequence's ROWS query heads of the kv head are the components of RowsF
// vectors (vec3 for 3 query heads per kv head, where attention_forward's vec4 repeats one). An
// invocation's K/V loads have offsets that differ per lane, which lavapipe performs lane by lane:
// the costly part, so a shared key read once per run instead of once per sequence is the saving.
// Invocation `lane` takes the keys j ≡ lane (mod LANES) counted from 0, in increasing order, in the
// shared part and then in the sequence's own part, with the same arithmetic in both; a key outside a
// part is masked, which leaves the softmax exactly as it was, so a sequence's result does not depend
// on where the parts meet nor on which run it is in.
//
// Layouts: q, out [B, 1, Hq, D]; k, v [B', S, Hkv, D], sequence b at row kv_rows[b]; lse [B, 1, Hq]
// (natural log, 0 for a row that sees no key); runs [R, 2]: the first sequence and the number of sequences (≤ SEQS) of each run, consecutive in the batch. The query
// sits at position kv_length − 1 and sees keys key_start[b] ≤ j with position − j < window (every
// sequence of a run has the same key_start).
struct Params {
  keys: u32,
  q_heads: u32,
  kv_heads: u32,
  kv_length: u32,
  // Keys a query sees, itself included (sliding-window layers); kv_length or more means all.
  window: u32,
  shared_length: u32,
  // The run workgroup 0 takes: a dispatch covers runs first_run … first_run + workgroups − 1.
  first_run: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> key_start: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;
@group(0) @binding(7) var<storage, read> kv_rows: array<u32>;
@group(0) @binding(8) var<storage, read> runs: array<u32>;

// Head dim (a multiple of 4).
const D: u32 = 64u;
const D4: u32 = D / 4u;
const LANES: u32 = 8u;
// Sequences a workgroup takes at most (the host dispatches runs of one with SEQS = 1).
const SEQS: u32 = 4u;
// Query heads per kv head (2–4), one per component of RowsF.
const ROWS: u32 = 4u;
alias RowsF = vec4<f32>;
// A finite "minus infinity", so max/exp arithmetic never meets inf − inf.
const NEG: f32 = -3.0e38;

var<workgroup> lane_max: array<RowsF, LANES>;
var<workgroup> lane_sum: array<RowsF, LANES>;
var<workgroup> lane_acc: array<RowsF, LANES * D>;

@compute @workgroup_size(LANES)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let run = p.first_run + wg.x;
  let first = runs[2u * run];
  let count = runs[2u * run + 1u];
  let g = wg.y;
  let pos = p.kv_length - 1u;
  let key_begin = max(key_start[first], select(0u, pos + 1u - p.window, pos + 1u > p.window));
  let shared_end = max(key_begin, min(p.shared_length, pos + 1u));

  // qs[s * D + d] holds dimension d of sequence s's rows, pre-scaled. The loops that run once per
  // workgroup stay rolled; those inside the key loop are unrolled by the host (// unroll) so that
  // every index into these arrays is a constant (see attention_forward).
  var qs: array<RowsF, SEQS * D>;
  var acc: array<RowsF, SEQS * D>;
  var m: array<RowsF, SEQS>;
  var l: array<RowsF, SEQS>;
  for (var s = 0u; s < SEQS; s++) {
    // A run of fewer than SEQS repeats its last sequence's queries (in bounds; never used).
    let head0 = (first + min(s, count - 1u)) * p.q_heads + g * ROWS;
    for (var d4 = 0u; d4 < D4; d4++) {
      for (var c = 0u; c < ROWS; c++) {
        let x = q[(head0 + c) * D4 + d4] * p.scale;
        qs[s * D + 4u * d4][c] = x.x;
        qs[s * D + 4u * d4 + 1u][c] = x.y;
        qs[s * D + 4u * d4 + 2u][c] = x.z;
        qs[s * D + 4u * d4 + 3u][c] = x.w;
      }
      acc[s * D + 4u * d4] = RowsF(0.0);
      acc[s * D + 4u * d4 + 1u] = RowsF(0.0);
      acc[s * D + 4u * d4 + 2u] = RowsF(0.0);
      acc[s * D + 4u * d4 + 3u] = RowsF(0.0);
    }
    m[s] = RowsF(NEG);
    l[s] = RowsF(0.0);
  }

  // The shared keys, read from the run's first sequence's rows, for all SEQS slots (a run of fewer
  // sequences computes copies of its last one rather than masking: lavapipe would run masked
  // arithmetic anyway).
  let end = pos + 1u;
  let shared_row = kv_rows[first] * p.keys * p.kv_heads + g;
  // From the multiple of LANES at or below the part's first key (none when the part is empty).
  for (var j0 = select(shared_end, key_begin - key_begin % LANES, key_begin < shared_end); j0 < shared_end; j0 += LANES) {
    let j = j0 + lane;
    let visible = j >= key_begin && j < shared_end;
    let kr = (shared_row + clamp(j, key_begin, shared_end - 1u) * p.kv_heads) * D4;
    var kv: array<vec4<f32>, D4>;
    for (var d4 = 0u; d4 < D4; d4++) { // unroll
      kv[d4] = k[kr + d4];
    }
    var correction: array<RowsF, SEQS>;
    var prob: array<RowsF, SEQS>;
    for (var s = 0u; s < SEQS; s++) { // unroll
      var score = RowsF(0.0);
      for (var d4 = 0u; d4 < D4; d4++) { // unroll
        score = fma(qs[s * D + 4u * d4], RowsF(kv[d4].x), score);
        score = fma(qs[s * D + 4u * d4 + 1u], RowsF(kv[d4].y), score);
        score = fma(qs[s * D + 4u * d4 + 2u], RowsF(kv[d4].z), score);
        score = fma(qs[s * D + 4u * d4 + 3u], RowsF(kv[d4].w), score);
      }
      let m_new = max(m[s], select(RowsF(NEG), score, visible));
      correction[s] = exp(m[s] - m_new);
      // Explicit zero: while a row has seen no key, m_new is NEG and exp(score − m_new) is not 0.
      prob[s] = select(RowsF(0.0), exp(score - m_new), visible);
      l[s] = fma(l[s], correction[s], prob[s]);
      m[s] = m_new;
    }
    for (var d4 = 0u; d4 < D4; d4++) { // unroll
      kv[d4] = v[kr + d4];
    }
    for (var s = 0u; s < SEQS; s++) { // unroll
      for (var d4 = 0u; d4 < D4; d4++) { // unroll
        acc[s * D + 4u * d4] = fma(acc[s * D + 4u * d4], correction[s], prob[s] * kv[d4].x);
        acc[s * D + 4u * d4 + 1u] = fma(acc[s * D + 4u * d4 + 1u], correction[s], prob[s] * kv[d4].y);
        acc[s * D + 4u * d4 + 2u] = fma(acc[s * D + 4u * d4 + 2u], correction[s], prob[s] * kv[d4].z);
        acc[s * D + 4u * d4 + 3u] = fma(acc[s * D + 4u * d4 + 3u], correction[s], prob[s] * kv[d4].w);
      }
    }
  }

  // Each sequence's own keys, the same arithmetic for one slot: the sequence's state moves to
  // qa, aa, ma, la for it (an index by s that is not a constant is a per-lane access: once per
  // sequence here, not per key).
  for (var s = 0u; s < count; s++) {
    var qa: array<RowsF, D>;
    var aa: array<RowsF, D>;
    for (var d = 0u; d < D; d++) {
      qa[d] = qs[s * D + d];
      aa[d] = acc[s * D + d];
    }
    var ma = m[s];
    var la = l[s];
    let row = kv_rows[first + s] * p.keys * p.kv_heads + g;
    for (var j0 = select(end, shared_end - shared_end % LANES, shared_end < end); j0 < end; j0 += LANES) {
      let j = j0 + lane;
      let visible = j >= shared_end && j < end;
      let kr = (row + clamp(j, shared_end, end - 1u) * p.kv_heads) * D4;
      var score = RowsF(0.0);
      for (var d4 = 0u; d4 < D4; d4++) { // unroll
        let kk = k[kr + d4];
        score = fma(qa[4u * d4], RowsF(kk.x), score);
        score = fma(qa[4u * d4 + 1u], RowsF(kk.y), score);
        score = fma(qa[4u * d4 + 2u], RowsF(kk.z), score);
        score = fma(qa[4u * d4 + 3u], RowsF(kk.w), score);
      }
      let m_new = max(ma, select(RowsF(NEG), score, visible));
      let correction = exp(ma - m_new);
      let prob = select(RowsF(0.0), exp(score - m_new), visible);
      la = fma(la, correction, prob);
      ma = m_new;
      for (var d4 = 0u; d4 < D4; d4++) { // unroll
        let vv = v[kr + d4];
        aa[4u * d4] = fma(aa[4u * d4], correction, prob * vv.x);
        aa[4u * d4 + 1u] = fma(aa[4u * d4 + 1u], correction, prob * vv.y);
        aa[4u * d4 + 2u] = fma(aa[4u * d4 + 2u], correction, prob * vv.z);
        aa[4u * d4 + 3u] = fma(aa[4u * d4 + 3u], correction, prob * vv.w);
      }
    }
    for (var d = 0u; d < D; d++) {
      acc[s * D + d] = aa[d];
    }
    m[s] = ma;
    l[s] = la;
  }

  // Each sequence in turn: merge the lanes' partial softmaxes (rescale each to the common max and
  // add) and store its rows.
  for (var s = 0u; s < SEQS; s++) { // unroll
    lane_max[lane] = m[s];
    lane_sum[lane] = l[s];
    for (var d4 = 0u; d4 < D4; d4++) { // unroll
      lane_acc[(4u * d4) * LANES + lane] = acc[s * D + 4u * d4];
      lane_acc[(4u * d4 + 1u) * LANES + lane] = acc[s * D + 4u * d4 + 1u];
      lane_acc[(4u * d4 + 2u) * LANES + lane] = acc[s * D + 4u * d4 + 2u];
      lane_acc[(4u * d4 + 3u) * LANES + lane] = acc[s * D + 4u * d4 + 3u];
    }
    workgroupBarrier();
    if (s < count) {
      var m_all = RowsF(NEG);
      for (var i = 0u; i < LANES; i++) { m_all = max(m_all, lane_max[i]); }
      var weight: array<RowsF, LANES>;
      var l_all = RowsF(0.0);
      for (var i = 0u; i < LANES; i++) {
        weight[i] = exp(lane_max[i] - m_all);
        l_all = fma(lane_sum[i], weight[i], l_all);
      }
      // A row whose keys are all masked outputs 0, not NaN.
      let seen = l_all > RowsF(0.0);
      let inv_l = select(RowsF(0.0), 1.0 / l_all, seen);
      let head0 = (first + s) * p.q_heads + g * ROWS;
      for (var d = lane; d < D; d += LANES) {
        var total = RowsF(0.0);
        for (var i = 0u; i < LANES; i++) { total = fma(lane_acc[d * LANES + i], weight[i], total); }
        let o = total * inv_l;
        for (var c = 0u; c < ROWS; c++) { out[(head0 + c) * D + d] = o[c]; }
      }
      if (lane == 0u) {
        let log_sum = select(RowsF(0.0), m_all + log(l_all), seen);
        for (var c = 0u; c < ROWS; c++) { lse[head0 + c] = log_sum[c]; }
      }
    }
    workgroupBarrier();
  }
}
