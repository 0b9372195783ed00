// First half of the embedding's table gradient: links the positions that share an id into lists
// in increasing position order, so embedding_grad.wgsl can sum each table row's gradients in a
// fixed order (bit-for-bit reproducible, unlike float atomics). For position n:
//   next[n]   = 1 + the next position with the same id, or 0 at the end of the list;
//   head[id]  = 1 + n when n is the id's first position (head starts zeroed; a list has one first
//               position, so each head has one writer).
// Each invocation scans the ids: O(positions²) comparisons, cheap next to the gradient itself for
// the few thousand positions of a training step.
struct Params {
  positions: u32,
  vocab: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> next: array<u32>;
@group(0) @binding(3) var<storage, read_write> head: array<u32>;

const WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let n = gid.x + gid.y * groups.x * WG;
  if (n >= p.positions) { return; }
  let id = ids[n];
  var first = true;
  for (var k = 0u; k < n; k++) {
    if (ids[k] == id) {
      first = false;
      break;
    }
  }
  var following = 0u;
  for (var k = n + 1u; k < p.positions; k++) {
    if (ids[k] == id) {
      following = k + 1u;
      break;
    }
  }
  next[n] = following;
  if (first && id < p.vocab) {
    head[id] = n + 1u;
  }
}
