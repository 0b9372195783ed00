// Per-sequence terms of the GRPO objective (TRL's GRPOTrainer._compute_loss) and their gradient
// with respect to the policy's log-probs, one workgroup per completion row.
//
// Pass 1 reduces what the whole row decides: Σ mask (the token count n), the masked sum of log
// ratios (the sequence-level importance weight of GSPO, and VESPO's clamped sum), and the masked
// KL sum (the sequence-level ratio's gradient reaches every token through the bias-corrected KL).
// Pass 2 walks the tokens again: per-token loss, dloss/dlogprobs, and the clip counts TRL logs.
//
// With ratio w (per token, or exp(mean log ratio) per sequence) and advantage A, the row's loss is
// R = Σ_t m_t·(P_t + β·K_t·W_t), where P is the policy term of the loss type, K the KL estimate
// and W = w when the KL is bias-corrected (else 1); grad[t] = row_scale · dR/dlogprobs[t], and
// row_stats gets [row_scale·R, n, Σ m·K·W, clip count, clipped low, clipped high, clipped either, φ].
struct Params {
  rows: u32,
  cols: u32,
  beta: f32,
  // The clip range [1 − ε_low, 1 + ε_high] (rounded to f32 on the host, as torch compares them).
  clip_low: f32,
  clip_high: f32,
  // TRL's `delta`: two-sided clipping caps the unclipped ratio at delta.
  delta: f32,
  // CISPO's cap on the (detached) ratio: TRL's epsilon_high itself.
  cispo_cap: f32,
  sapo_temperature_pos: f32,
  sapo_temperature_neg: f32,
  vespo_k_pos: f32,
  vespo_lambda_pos: f32,
  vespo_k_neg: f32,
  vespo_lambda_neg: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logprobs: array<f32>;
// The log-probs of the policy that sampled the completions (an alias of logprobs when on-policy).
@group(0) @binding(2) var<storage, read> old_logprobs: array<f32>;
// The reference model's log-probs (an alias of logprobs, never read, without KL).
@group(0) @binding(3) var<storage, read> ref_logprobs: array<f32>;
@group(0) @binding(4) var<storage, read> advantages: array<f32>;
@group(0) @binding(5) var<storage, read> mask: array<f32>;
@group(0) @binding(6) var<storage, read_write> grad: array<f32>;
@group(0) @binding(7) var<storage, read_write> row_stats: array<f32>;

const WG: u32 = 64u;
// 0: PPO-style clipped ratio (grpo, bnpo, dr_grpo, dapo, luspo); 1: SAPO's soft gate;
// 2: CISPO (capped detached ratio times log-prob); 3: VESPO (detached gamma weight times log-prob).
const POLICY: u32 = 0u;
const SEQUENCE: bool = false;
// 0: no KL term; 1: k1 = logp − ref; 2: k2 = ½(logp − ref)²; 3: k3 = exp(ref − logp) − (ref − logp) − 1.
const KL: u32 = 0u;
const KL_BIAS_CORRECTION: bool = true;
const HAS_DELTA: bool = false;
// grpo and sapo average each row over its tokens before the batch mean.
const ROW_MEAN: bool = false;
const WITH_GRAD: bool = true;
const STATS: u32 = 8u;

var<workgroup> tree: array<vec4<f32>, WG>;

// Sums v over the workgroup; every invocation gets the total (all must call it).
fn workgroup_sum(v: vec4<f32>, lid: u32) -> vec4<f32> {
  workgroupBarrier();
  tree[lid] = v;
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if (lid < stride) { tree[lid] += tree[lid + stride]; }
  }
  workgroupBarrier();
  return tree[0];
}

// exp(d) − d − 1. Near d = 0 (a policy close to its reference, the usual case) the direct form
// loses everything to cancellation against 1 (absolute error ~1e-7 on values ~d²/2), so there the
// Taylor series through d¹² is used: its truncation error is < 1e-8 relative for |d| < 1.
fn exp_minus_linear(d: f32) -> f32 {
  if (abs(d) >= 1.0) { return exp(d) - d - 1.0; }
  var series = 1.0 / 479001600.0;
  series = 1.0 / 39916800.0 + d * series;
  series = 1.0 / 3628800.0 + d * series;
  series = 1.0 / 362880.0 + d * series;
  series = 1.0 / 40320.0 + d * series;
  series = 1.0 / 5040.0 + d * series;
  series = 1.0 / 720.0 + d * series;
  series = 1.0 / 120.0 + d * series;
  series = 1.0 / 24.0 + d * series;
  series = 1.0 / 6.0 + d * series;
  series = 0.5 + d * series;
  return d * d * series;
}

// The KL estimate of the policy from the reference at one token (x) and its derivative in logp (y).
fn kl_term(logp: f32, ref_logp: f32) -> vec2<f32> {
  let d = ref_logp - logp;
  if (KL == 1u) { return vec2<f32>(-d, 1.0); }
  if (KL == 2u) { return vec2<f32>(0.5 * d * d, -d); }
  // k3 = exp(d) − d − 1; its derivative in logp is 1 − exp(d) = −(d + k3).
  let k3 = exp_minus_linear(d);
  return vec2<f32>(k3, -(d + k3));
}

// torch.clamp passes the gradient only strictly inside its bounds.
fn inside(x: f32, lo: f32, hi: f32) -> f32 {
  return select(0.0, 1.0, x > lo && x < hi);
}

// Policy term for ratio w (value x; dP/dw in y) and its clip flags (low, high) as TRL logs them.
struct Policy {
  value: f32,
  d_ratio: f32,
  low: f32,
  high: f32,
}

fn clipped_policy(w: f32, a: f32) -> Policy {
  let clipped = clamp(w, p.clip_low, p.clip_high);
  var capped = w;
  var d_capped = 1.0;
  if (HAS_DELTA) {
    capped = min(w, p.delta);
    d_capped = select(0.0, 1.0, w < p.delta);
  }
  let unclipped_loss = capped * a;
  let clipped_loss = clipped * a;
  let d_unclipped = d_capped * a;
  let d_clipped = inside(w, p.clip_low, p.clip_high) * a;
  // −min(·,·); on a tie torch splits the gradient evenly between both sides.
  var d = select(d_clipped, d_unclipped, unclipped_loss < clipped_loss);
  if (unclipped_loss == clipped_loss) { d = 0.5 * (d_unclipped + d_clipped); }
  // TRL flags clipping on the delta-capped ratio.
  let low = select(0.0, 1.0, capped < p.clip_low && a < 0.0);
  let high = select(0.0, 1.0, capped > p.clip_high && a > 0.0);
  return Policy(-min(unclipped_loss, clipped_loss), -d, low, high);
}

fn policy_term(w: f32, a: f32) -> Policy {
  if (POLICY == 1u) {
    let temperature = select(p.sapo_temperature_neg, p.sapo_temperature_pos, a > 0.0);
    let gate = 1.0 / (1.0 + exp(-temperature * (w - 1.0)));
    return Policy(-gate * 4.0 / temperature * a, -4.0 * gate * (1.0 - gate) * a, 0.0, 0.0);
  }
  if (POLICY == 2u) {
    // The loss is −min(w, cap)·A·logp with the ratio detached: no gradient through w.
    return Policy(0.0, 0.0, 0.0, select(0.0, 1.0, w > p.cispo_cap && a > 0.0));
  }
  if (POLICY == 3u) {
    return Policy(0.0, 0.0, 0.0, 0.0);
  }
  return clipped_policy(w, a);
}

// VESPO's gamma weight φ(w) = exp(λ + k·log w − λ·w) of the sequence ratio w = exp(clamped Σ log ratio).
fn vespo_weight(log_ratio_sum: f32, a: f32) -> f32 {
  let log_w = clamp(log_ratio_sum, log(1e-8), 20.0);
  let k = select(p.vespo_k_neg, p.vespo_k_pos, a >= 0.0);
  let lambda = max(select(p.vespo_lambda_neg, p.vespo_lambda_pos, a >= 0.0), 1e-4);
  let phi = exp(lambda + k * log_w - lambda * exp(log_w));
  // torch's nan_to_num(nan=0, posinf=0, neginf=0).
  return select(phi, 0.0, phi != phi || abs(phi) > 3.4028234e38);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * groups.x;
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  let a = advantages[row];

  // Pass 1: n, Σ m·log ratio, Σ m·clamp(log ratio, ±20) (VESPO), Σ m·K (bias-corrected sequence KL).
  // Masked-out tokens are skipped, so padding holding inf or NaN cannot leak into the row.
  var partial = vec4<f32>(0.0);
  for (var t = lid; t < p.cols; t += WG) {
    let m = mask[base + t];
    if (m == 0.0) { continue; }
    let log_ratio = logprobs[base + t] - old_logprobs[base + t];
    var kl = 0.0;
    if (KL != 0u && SEQUENCE && KL_BIAS_CORRECTION) { kl = kl_term(logprobs[base + t], ref_logprobs[base + t]).x; }
    partial += m * vec4<f32>(1.0, log_ratio, clamp(log_ratio, -20.0, 20.0), kl);
  }
  let row_sums = workgroup_sum(partial, lid);
  let n = row_sums.x;
  let denom = max(n, 1.0);
  let sequence_ratio = exp(row_sums.y / denom);
  var phi = 0.0;
  if (POLICY == 3u) { phi = vespo_weight(row_sums.z, a); }
  let row_scale = select(1.0, 1.0 / denom, ROW_MEAN);

  // Pass 2: per-token loss and gradient. x: Σ m·(P + β·K·W); y: Σ m·K·W; z, w: clipped low, high.
  var sums = vec4<f32>(0.0);
  var region = 0.0;
  for (var t = lid; t < p.cols; t += WG) {
    let i = base + t;
    let m = mask[i];
    if (m == 0.0) {
      if (WITH_GRAD) { grad[i] = 0.0; }
      continue;
    }
    let logp = logprobs[i];
    var w = sequence_ratio;
    if (!SEQUENCE) { w = exp(logp - old_logprobs[i]); }
    // dw/dlogp[t] of this token's ratio, or of the row's ratio (w·m_t/denom; m_t is factored out below).
    let dw = select(w, w / denom, SEQUENCE);
    // The policy term is one value per row at sequence level: the row carries it n times.
    let repeats = select(1.0, n, SEQUENCE);
    let policy = policy_term(w, a);
    var loss = policy.value;
    var d = repeats * policy.d_ratio * dw;
    if (POLICY == 2u) {
      let weight = min(w, p.cispo_cap) * a;
      loss = -weight * logp;
      d = -weight;
    } else if (POLICY == 3u) {
      loss = -phi * a * logp;
      d = -phi * a;
    }
    var weighted_kl = 0.0;
    if (KL != 0u) {
      let kl = kl_term(logp, ref_logprobs[i]);
      if (KL_BIAS_CORRECTION) {
        weighted_kl = kl.x * w;
        // Through the ratio: this token's K (token level) or the row's Σ m·K (sequence level).
        let through_ratio = select(kl.x, row_sums.w, SEQUENCE) * dw;
        d += p.beta * (kl.y * w + through_ratio);
      } else {
        weighted_kl = kl.x;
        d += p.beta * kl.y;
      }
      loss += p.beta * weighted_kl;
    }
    if (WITH_GRAD) { grad[i] = row_scale * m * d; }
    sums += m * vec4<f32>(loss, weighted_kl, policy.low, policy.high);
    region += m * max(policy.low, policy.high);
  }
  let totals = workgroup_sum(sums, lid);
  let region_total = workgroup_sum(vec4<f32>(region, 0.0, 0.0, 0.0), lid).x;

  if (lid == 0u) {
    let out = row * STATS;
    row_stats[out] = row_scale * totals.x;
    row_stats[out + 1u] = n;
    row_stats[out + 2u] = totals.y;
    if (SEQUENCE) {
      // TRL logs sequence-level clipping once per row (every row counts, even an empty one).
      let policy = policy_term(sequence_ratio, a);
      row_stats[out + 3u] = 1.0;
      row_stats[out + 4u] = policy.low;
      row_stats[out + 5u] = policy.high;
      row_stats[out + 6u] = max(policy.low, policy.high);
    } else {
      row_stats[out + 3u] = n;
      row_stats[out + 4u] = totals.z;
      row_stats[out + 5u] = totals.w;
      row_stats[out + 6u] = region_total;
    }
    row_stats[out + 7u] = phi;
  }
}
