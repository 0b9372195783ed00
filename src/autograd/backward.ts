import { noGrad } from './grad-node.js';
import { accumulate, clone } from './accumulate.js';
import { formatShape, type Tensor } from '../gpu/tensor.js';

function reachable(root: Tensor): Tensor[] {
  const seen = new Set<Tensor>();
  const stack = [root];
  while (stack.length) {
    const t = stack.pop()!;
    if (seen.has(t)) continue;
    seen.add(t);
    if (t.node) for (const input of t.node.inputs) if (input.requiresGrad) stack.push(input);
  }
  // Ids grow in creation order, so decreasing id is a reverse topological order.
  return [...seen].sort((a, b) => b.id - a.id);
}

/**
 * Reverse-mode pass from `root`: leaves with requiresGrad get `.grad` (added to an existing grad,
 * which is how gradient accumulation over micro-batches works). Intermediate gradients are
 * disposed as soon as every consumer is done with them.
 */
export function backward(root: Tensor, gradRoot?: Tensor): void {
  if (!root.requiresGrad) throw new Error(`backward: ${root} does not require grad (no parameter leads to it)`);
  const gpu = root.gpu;
  const seed = gradRoot ?? gpu.tensor(new Float32Array(root.size).fill(1), root.shape);
  if (seed.size !== root.size) throw new Error(`backward: gradient ${formatShape(seed.shape)} does not match ${formatShape(root.shape)}`);
  noGrad(() => {
    const grads = new Map<Tensor, Tensor>([[root, seed]]);
    const owned = new Set<Tensor>();
    for (const t of reachable(root)) {
      const g = grads.get(t);
      if (!g) continue;
      grads.delete(t);
      if (t.node) {
        const inputGrads = t.node.backward(g);
        t.node.inputs.forEach((input, i) => {
          const gi = inputGrads[i];
          if (!gi || !input.requiresGrad) return;
          if (gi.size !== input.size) {
            throw new Error(`${t.node!.op} backward: gradient ${formatShape(gi.shape)} for input ${formatShape(input.shape)}`);
          }
          const existing = grads.get(input);
          if (!existing) {
            grads.set(input, gi);
          } else if (owned.has(existing)) {
            accumulate(existing, gi);
          } else {
            const sum = clone(existing);
            accumulate(sum, gi);
            owned.add(sum);
            grads.set(input, sum);
          }
        });
      } else if (t.grad) {
        accumulate(t.grad, g);
      } else {
        t.grad = gpu.keep(clone(g, t.shape));
      }
      const stillUsed = new Set(grads.values());
      if (g !== seed && !stillUsed.has(g)) g.dispose();
    }
  });
  if (!gradRoot) seed.dispose();
}
