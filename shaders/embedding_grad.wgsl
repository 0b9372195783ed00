// Second half of the embedding's table gradient: d_table[v, c] = Σ g[n, c] over the positions n
// with ids[n] = v, walking the list embedding_grad_links.wgsl built (increasing n), so every
// element is summed in the same order on every run. Rows of ids that never occur get zeros.
struct Params {
  n: u32,
  dim: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> head: array<u32>;
@group(0) @binding(2) var<storage, read> next: array<u32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;
@group(0) @binding(4) var<storage, read_write> d_table: array<f32>;

const WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i >= p.n) { return; }
  let row = i / p.dim;
  let column = i - row * p.dim;
  var sum = 0.0;
  var link = head[row];
  while (link != 0u) {
    sum += g[(link - 1u) * p.dim + column];
    link = next[link - 1u];
  }
  d_table[i] = sum;
}
