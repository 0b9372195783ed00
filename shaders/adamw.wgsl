// One AdamW step for one parameter tensor, in place, with torch.optim.AdamW's operation order
// (single-tensor path): decoupled decay, then the moments, then the bias-corrected update.
// Everything that changes per step (lr, bias corrections) arrives in the params block, so a
// schedule never recompiles the shader.
struct Params {
  n: u32,
  decay: f32,                 // 1 − lr·weight_decay
  beta1_weight: f32,          // 1 − β1, the weight of torch's lerp of m toward g
  beta2: f32,
  one_minus_beta2: f32,
  step_size: f32,             // lr / (1 − β1^t)
  bias_correction2_sqrt: f32, // √(1 − β2^t)
  eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> exp_avg: array<f32>;
@group(0) @binding(4) var<storage, read_write> exp_avg_sq: array<f32>;

const WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i >= p.n) { return; }
  let g = grad[i];
  var m = exp_avg[i];
  // torch's lerp switches form at weight 0.5 to stay exact at both ends.
  if (p.beta1_weight < 0.5) {
    m = m + p.beta1_weight * (g - m);
  } else {
    m = g - (g - m) * (1.0 - p.beta1_weight);
  }
  let v = exp_avg_sq[i] * p.beta2 + p.one_minus_beta2 * g * g;
  let denom = sqrt(v) / p.bias_correction2_sqrt + p.eps;
  param[i] = param[i] * p.decay - p.step_size * m / denom;
  exp_avg[i] = m;
  exp_avg_sq[i] = v;
}
