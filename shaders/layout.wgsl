// Strided copy over up to 4 dims (shapes padded on the left with 1s): for every index tuple k
// within `shape`, dst[dst_offset + k·dst_stride] = src[src_offset + k·src_stride]. Permutes
// (permuted source strides), slices (source offset) and concatenation (destination offset and
// strides of the whole output) are all this one copy. V is vec4<f32> when the host counts the copy
// in vec4s (the last axis contiguous and 16-byte aligned in both), f32 otherwise.
struct Params {
  n: u32,
  src_offset: u32,
  dst_offset: u32,
  _pad0: u32,
  shape: vec4<u32>,
  src_stride: vec4<u32>,
  dst_stride: vec4<u32>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<V>;
@group(0) @binding(2) var<storage, read_write> dst: array<V>;

alias V = f32;
const WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i >= p.n) { return; }
  var rest = i;
  var src_index = p.src_offset;
  var dst_index = p.dst_offset;
  for (var d = 3i; d >= 0i; d--) {
    let k = rest % p.shape[d];
    rest = rest / p.shape[d];
    src_index += k * p.src_stride[d];
    dst_index += k * p.dst_stride[d];
  }
  dst[dst_index] = src[src_index];
}
