// Gradient of reduce.wgsl for x (rows as there): OP 0 (sum, mean) spreads g[row] · scale over the
// row; OP 1 (max) routes g[row] to the row's first maximum and zero elsewhere.
struct Params {
  cols: u32,
  n: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> index: array<u32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

const OP: u32 = 0u;
const WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i >= p.n) { return; }
  let row = i / p.cols;
  if (OP == 0u) {
    dx[i] = g[row] * p.scale;
  } else {
    dx[i] = select(0.0, g[row], i - row * p.cols == index[row]);
  }
}
