// dx = g · f'(x) for the functions of unary.wgsl (same OP numbering). Derivatives are recomputed
// from x rather than read from the forward output, so backward needs only the input saved.
struct Params { n: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

const OP: u32 = 0u;
const WG: u32 = 256u;

fn sigmoid(v: f32) -> f32 {
  return 1.0 / (1.0 + exp(-v));
}

fn derivative(v: f32) -> f32 {
  switch OP {
    case 1u: { return 1.0 / v; }
    case 2u: { return -1.0; }
    case 3u: { return 0.5 / sqrt(v); }
    case 4u: { return 2.0 * v; }
    // relu'(0) = 0, as in PyTorch.
    case 5u: { return select(0.0, 1.0, v > 0.0); }
    case 6u: { let s = sigmoid(v); return s * (1.0 - s); }
    case 7u: { let s = sigmoid(v); return s * (1.0 + v * (1.0 - s)); }
    default: { return exp(v); }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i < p.n) {
    dx[i] = g[i] * derivative(x[i]);
  }
}
