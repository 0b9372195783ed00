// Inverted dropout: out = x / (1 − p) where the element is kept, 0 where it is dropped. The mask
// is not stored: it is a counter-based hash of (key, element index), so the backward pass applies
// the same mask to the gradient by running this kernel again with the same key.
struct Params {
  n: u32,
  // pcg(seed ^ pcg(stream)), computed on the host: one stream per dropout application.
  key: u32,
  // An element is kept when the top 24 bits of its hash are ≥ round(p · 2²⁴).
  threshold: u32,
  keep_scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const WG: u32 = 256u;

// PCG hash (Jarzynski & Olano 2020); src/nn/dropout.ts has the same function for the host.
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i >= p.n) { return; }
  let bits = pcg(pcg(i) ^ p.key) >> 8u;
  out[i] = select(0.0, x[i] * p.keep_scale, bits >= p.threshold);
}
