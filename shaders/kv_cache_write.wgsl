// Writes this step's keys and values ([B, T, row]) into the cache ([B', capacity, row]) at
// positions offset … offset+T−1 of cache row rows[b]: one dispatch per layer instead of one copy
// per sequence. A row (Hkv · D values) is a whole number of vec4s, as every head dim the attention
// kernels take is a multiple of 4; `row` counts them.
struct Params {
  batch: u32,
  steps: u32,
  row: u32,
  capacity: u32,
  offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> k_new: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> v_new: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> k_cache: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> v_cache: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> rows: array<u32>;

const WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i >= p.batch * p.steps * p.row) { return; }
  let e = i % p.row;
  let t = (i / p.row) % p.steps;
  let b = i / (p.row * p.steps);
  let dst = (rows[b] * p.capacity + p.offset + t) * p.row + e;
  k_cache[dst] = k_new[i];
  v_cache[dst] = v_new[i];
}
