// out = alpha * (a OP b) with NumPy broadcasting over up to 4 dims (shapes padded on the left;
// a broadcast dim has stride 0). CONTIGUOUS: a, b and out have one shape, so element i of each is
// the same index and V may be vec4<f32> (see swiglu); n then counts V elements.
struct Params {
  n: u32,
  _pad0: u32, _pad1: u32, _pad2: u32,
  shape: vec4<u32>,
  stride_a: vec4<u32>,
  stride_b: vec4<u32>,
  alpha: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<V>;
@group(0) @binding(2) var<storage, read> b: array<V>;
@group(0) @binding(3) var<storage, read_write> out: array<V>;

// 0 add, 1 sub, 2 mul, 3 div, 4 left operand only (a scaled copy).
const OP: u32 = 0u;
const CONTIGUOUS: bool = false;
alias V = f32;
const WG: u32 = 256u;

fn combine(x: V, y: V) -> V {
  switch OP {
    case 1u: { return x - y; }
    case 2u: { return x * y; }
    case 3u: { return x / y; }
    case 4u: { return x; }
    default: { return x + y; }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i >= p.n) { return; }
  var ia = i;
  var ib = i;
  if (!CONTIGUOUS) {
    var rest = i;
    ia = 0u;
    ib = 0u;
    for (var d = 3i; d >= 0i; d--) {
      let idx = rest % p.shape[d];
      rest = rest / p.shape[d];
      ia += idx * p.stride_a[d];
      ib += idx * p.stride_b[d];
    }
  }
  out[i] = p.alpha * combine(a[ia], b[ib]);
}
