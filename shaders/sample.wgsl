// Samples one token per row of logits [rows, V] — temperature, top-k, top-p, min-p as in
// Hugging Face's logits warpers (applied in that order), or greedy argmax when temperature is 0.
// One workgroup per row. Filters become one threshold on the scaled logit z = (l − max)/T:
// a token is kept when z ≥ threshold. top-k and top-p thresholds are found exactly by bisection
// over the 32-bit order-preserving keys of z (ties at the threshold are kept, as in HF).
struct Params {
  vocab: u32,
  top_k: u32,
  seed: u32,
  step: u32,
  temperature: f32,
  top_p: f32,
  min_p: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> tokens: array<u32>;
// The row number each row's random draw is keyed by: a sequence keeps its draws when the rows
// around it leave the batch (generation drops finished sequences).
@group(0) @binding(3) var<storage, read> draw_rows: array<u32>;

const WG: u32 = 256u;

var<workgroup> red_f: array<f32, WG>;
var<workgroup> red_u: array<u32, WG>;
var<workgroup> row_finite: u32;

// Written instead of a token for a row with a NaN or ±inf logit (the model's weights or activations
// are broken); no vocabulary comes near it.
const NON_FINITE: u32 = 0xfffffffeu;

fn key_of(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn reduce_max(lid: u32, v: f32) -> f32 {
  red_f[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red_f[lid] = max(red_f[lid], red_f[lid + s]); }
    workgroupBarrier();
  }
  let r = red_f[0];
  workgroupBarrier();
  return r;
}

fn reduce_sum(lid: u32, v: f32) -> f32 {
  red_f[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red_f[lid] += red_f[lid + s]; }
    workgroupBarrier();
  }
  let r = red_f[0];
  workgroupBarrier();
  return r;
}

fn reduce_min_u(lid: u32, v: u32) -> u32 {
  red_u[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red_u[lid] = min(red_u[lid], red_u[lid + s]); }
    workgroupBarrier();
  }
  let r = red_u[0];
  workgroupBarrier();
  return r;
}

fn reduce_sum_u(lid: u32, v: u32) -> u32 {
  red_u[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red_u[lid] += red_u[lid + s]; }
    workgroupBarrier();
  }
  let r = red_u[0];
  workgroupBarrier();
  return r;
}

// PCG hash: a counter-based generator, so (seed, row, step) fixes the draw and runs reproduce.
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let lid = lid3.x;
  let row = wid.x;
  let base = row * p.vocab;

  var local_max = -3.4e38;
  var finite = 1u;
  for (var i = lid; i < p.vocab; i += WG) {
    let x = logits[base + i];
    local_max = max(local_max, x);
    // By the bits: a compiler may assume floats are finite and fold x != x away.
    if ((bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u) { finite = 0u; }
  }
  let row_max = reduce_max(lid, local_max);
  let all_finite = reduce_min_u(lid, finite);
  if (lid == 0u) { row_finite = all_finite; }
  if (workgroupUniformLoad(&row_finite) == 0u) {
    if (lid == 0u) { tokens[row] = NON_FINITE; }
    return;
  }

  if (p.temperature <= 0.0) {
    var first = 0xffffffffu;
    for (var i = lid; i < p.vocab; i += WG) {
      if (logits[base + i] == row_max) { first = min(first, i); }
    }
    let argmax = reduce_min_u(lid, first);
    if (lid == 0u) { tokens[row] = argmax; }
    return;
  }

  let inv_t = 1.0 / p.temperature;
  var threshold = 0u;  // key of the smallest kept z; 0 keeps everything

  if (p.top_k > 0u && p.top_k < p.vocab) {
    // Largest key K with count(key(z) ≥ K) ≥ k, bit by bit from the top.
    var k_key = 0u;
    for (var bit = 31i; bit >= 0i; bit--) {
      let candidate = k_key | (1u << u32(bit));
      var count = 0u;
      for (var i = lid; i < p.vocab; i += WG) {
        count += select(0u, 1u, key_of((logits[base + i] - row_max) * inv_t) >= candidate);
      }
      if (reduce_sum_u(lid, count) >= p.top_k) { k_key = candidate; }
    }
    threshold = k_key;
  }

  if (p.top_p < 1.0) {
    var local_total = 0.0;
    for (var i = lid; i < p.vocab; i += WG) {
      let z = (logits[base + i] - row_max) * inv_t;
      local_total += select(0.0, exp(z), key_of(z) >= threshold);
    }
    let total = reduce_sum(lid, local_total);
    // Largest key K whose kept mass (among the top-k survivors) is still ≥ top_p.
    var p_key = 0u;
    for (var bit = 31i; bit >= 0i; bit--) {
      let candidate = p_key | (1u << u32(bit));
      var mass = 0.0;
      for (var i = lid; i < p.vocab; i += WG) {
        let z = (logits[base + i] - row_max) * inv_t;
        let key = key_of(z);
        mass += select(0.0, exp(z), key >= candidate && key >= threshold);
      }
      if (reduce_sum(lid, mass) >= p.top_p * total) { p_key = candidate; }
    }
    threshold = max(threshold, p_key);
  }

  if (p.min_p > 0.0) {
    // p_i ≥ min_p · p_max  ⇔  z_i ≥ ln(min_p), since z_max = 0.
    threshold = max(threshold, key_of(log(p.min_p)));
  }

  // Each lane owns a contiguous chunk so the cumulative sum runs in token order.
  let chunk = (p.vocab + WG - 1u) / WG;
  let start = min(lid * chunk, p.vocab);
  let end = min(start + chunk, p.vocab);
  var lane_mass = 0.0;
  for (var i = start; i < end; i++) {
    let z = (logits[base + i] - row_max) * inv_t;
    lane_mass += select(0.0, exp(z), key_of(z) >= threshold);
  }
  red_f[lid] = lane_mass;
  workgroupBarrier();
  if (lid == 0u) {
    var total = 0.0;
    for (var l = 0u; l < WG; l++) { total += red_f[l]; }
    let u = f32(pcg(pcg(p.seed ^ pcg(draw_rows[row])) ^ p.step) >> 8u) / 16777216.0 * total;
    var acc = 0.0;
    var lane = 0u;
    for (; lane < WG - 1u; lane++) {
      if (acc + red_f[lane] > u && red_f[lane] > 0.0) { break; }
      acc += red_f[lane];
    }
    red_u[0] = lane;
    red_f[0] = u - acc;
  }
  workgroupBarrier();
  let chosen_lane = red_u[0];
  let remaining = red_f[0];
  workgroupBarrier();
  if (lid == chosen_lane) {
    var acc = 0.0;
    var token = 0xffffffffu;
    var last_kept = start;
    for (var i = start; i < end; i++) {
      let z = (logits[base + i] - row_max) * inv_t;
      if (key_of(z) >= threshold) {
        last_kept = i;
        acc += exp(z);
        if (acc > remaining) { token = i; break; }
      }
    }
    // Rounding can leave u just past the chunk's last kept token.
    tokens[row] = select(token, last_kept, token == 0xffffffffu);
  }
}
