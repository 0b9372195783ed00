// Per row of logits: log-softmax of the target token (and optionally the row's entropy) in one
// pass, without materialising the row's softmax. One workgroup per row; each invocation folds a
// strided slice of the row into an online state, then the workgroup merges the states.
//
// Rows are those of a [rows, vocab] chunk; targets and outputs are indexed from row_offset, so a
// caller holding only a slice of the logits writes into full-length per-token tensors.
struct Params {
  rows: u32,
  vocab: u32,
  row_offset: u32,
  // Written for an out-of-range target: NaN, passed in because WGSL constants cannot be NaN.
  invalid: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read_write> logprobs: array<f32>;
@group(0) @binding(4) var<storage, read_write> logsumexp: array<f32>;
@group(0) @binding(5) var<storage, read_write> entropy: array<f32>;

const WG: u32 = 64u;
const WITH_ENTROPY: bool = false;
// The lowest finite f32: a start for the running max that keeps (start − max)·0 finite.
const LOWEST: f32 = -0x1.fffffep+127f;

// m: running max; s: Σ exp(x − m); u: Σ exp(x − m)·(x − m), which gives the entropy as
// log s − u/s without the cancellation that Σ p·x would suffer for large logits.
struct Online {
  m: f32,
  s: f32,
  u: f32,
}

var<workgroup> shared_m: array<f32, WG>;
var<workgroup> shared_s: array<f32, WG>;
var<workgroup> shared_u: array<f32, WG>;

// Folds four values at once (one rescale per quad rather than per value); `valid` zeroes the
// padding lanes of a partial quad.
fn fold(state: Online, x: vec4<f32>, valid: vec4<f32>) -> Online {
  let m = max(state.m, max(max(x.x, x.y), max(x.z, x.w)));
  let rescale = exp(state.m - m);
  let e = exp(x - m) * valid;
  var u = 0.0;
  if (WITH_ENTROPY) {
    // Logits of −inf contribute nothing (0·−inf would be NaN).
    let eu = select(vec4<f32>(0.0), e * (x - m), e > vec4<f32>(0.0));
    u = rescale * (state.u + (state.m - m) * state.s) + dot(eu, vec4<f32>(1.0));
  }
  return Online(m, state.s * rescale + dot(e, vec4<f32>(1.0)), u);
}

fn merge(a: Online, b: Online) -> Online {
  let m = max(a.m, b.m);
  let ea = exp(a.m - m);
  let eb = exp(b.m - m);
  var u = 0.0;
  if (WITH_ENTROPY) {
    u = ea * (a.u + (a.m - m) * a.s) + eb * (b.u + (b.m - m) * b.s);
  }
  return Online(m, a.s * ea + b.s * eb, u);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * groups.x;
  if (row >= p.rows) { return; }
  let base = row * p.vocab;

  var state = Online(LOWEST, 0.0, 0.0);
  let full_quads = p.vocab / 4u;
  for (var q = lid; q < full_quads; q += WG) {
    let i = base + 4u * q;
    state = fold(state, vec4<f32>(logits[i], logits[i + 1u], logits[i + 2u], logits[i + 3u]), vec4<f32>(1.0));
  }
  let tail = 4u * full_quads + lid;
  if (tail < p.vocab) {
    state = fold(state, vec4<f32>(logits[base + tail]), vec4<f32>(1.0, 0.0, 0.0, 0.0));
  }

  shared_m[lid] = state.m;
  shared_s[lid] = state.s;
  shared_u[lid] = state.u;
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if (lid < stride) {
      let merged = merge(Online(shared_m[lid], shared_s[lid], shared_u[lid]),
                         Online(shared_m[lid + stride], shared_s[lid + stride], shared_u[lid + stride]));
      shared_m[lid] = merged.m;
      shared_s[lid] = merged.s;
      shared_u[lid] = merged.u;
    }
  }

  if (lid == 0u) {
    let out = p.row_offset + row;
    let log_s = log(shared_s[0]);
    let lse = shared_m[0] + log_s;
    let token = targets[out];
    logprobs[out] = select(p.invalid, logits[base + min(token, p.vocab - 1u)] - lse, token < p.vocab);
    logsumexp[out] = lse;
    if (WITH_ENTROPY) {
      entropy[out] = log_s - shared_u[0] / shared_s[0];
    }
  }
}
