// Sums a tensor over its broadcast dims down to a smaller shape (the backward of broadcasting).
// Shapes are padded to 4 dims; a dim is reduced where out_shape is 1 and in_shape is not.
struct Params {
  n: u32,
  _pad0: u32, _pad1: u32, _pad2: u32,
  in_shape: vec4<u32>,
  out_shape: vec4<u32>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let o = gid.x + gid.y * groups.x * WG;
  if (o >= p.n) { return; }
  var in_stride = vec4<u32>(1u);
  for (var d = 2i; d >= 0i; d--) { in_stride[d] = in_stride[d + 1] * p.in_shape[d + 1]; }
  var base = 0u;
  var reduced = vec4<u32>(1u);
  var count = 1u;
  var rest = o;
  for (var d = 3i; d >= 0i; d--) {
    let idx = rest % p.out_shape[d];
    rest = rest / p.out_shape[d];
    base += idx * in_stride[d];
    if (p.out_shape[d] == 1u) { reduced[d] = p.in_shape[d]; count *= p.in_shape[d]; }
  }
  var sum = 0.0;
  for (var r = 0u; r < count; r++) {
    var k = r;
    var offset = base;
    for (var d = 3i; d >= 0i; d--) {
      offset += (k % reduced[d]) * in_stride[d];
      k = k / reduced[d];
    }
    sum += src[offset];
  }
  out[o] = sum;
}
