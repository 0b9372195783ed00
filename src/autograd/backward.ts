import { noGrad } from './grad-node.js';
import { accumulate, clone } from './accumulate.js';
import { formatShape, type Tensor } from '../gpu/tensor.js';

function reachable(roots: readonly Tensor[]): Tensor[] {
  const seen = new Set<Tensor>();
  const stack = [...roots];
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
  const seed = gradRoot ?? root.gpu.tensor(new Float32Array(root.size).fill(1), root.shape);
  backwardFrom([root], [seed]);
  if (!gradRoot) seed.dispose();
}

/** The pass of backward() from several outputs at once, each with its gradient (the caller's to dispose). */
export function backwardFrom(roots: readonly Tensor[], seeds: readonly Tensor[]): void {
  roots.forEach((root, i) => {
    if (seeds[i].size !== root.size) throw new Error(`backward: gradient ${formatShape(seeds[i].shape)} does not match ${formatShape(root.shape)}`);
  });
  const gpu = roots[0].gpu;
  noGrad(() => {
    const grads = new Map<Tensor, Tensor>();
    roots.forEach((root, i) => addGrad(grads, new Set(), root, seeds[i]));
    const owned = new Set<Tensor>();
    const take = (t: Tensor): Tensor | null => {
      const g = grads.get(t) ?? null;
      grads.delete(t);
      return g;
    };
    for (const t of reachable(roots)) {
      const g = grads.get(t);
      if (!g) continue;
      const node = t.node;
      let used: (Tensor | null)[] = [g];
      if (!node) {
        grads.delete(t);
        if (t.grad) accumulate(t.grad, g);
        else t.grad = gpu.keep(clone(g, t.shape));
      } else {
        let inputGrads: readonly (Tensor | null)[];
        if ('outputs' in node) {
          // Every consumer of every output was created after all of them, so when the first output
          // is reached (highest id) all of their gradients are complete.
          used = node.outputs.map(take);
          inputGrads = node.backwardAll(used);
        } else {
          grads.delete(t);
          inputGrads = node.backward(g, node.inputs.map(parameterGrad));
        }
        node.inputs.forEach((input, i) => {
          const gi = inputGrads[i];
          if (!gi || !input.requiresGrad) return;
          if (gi.size !== input.size) throw new Error(`${node.op} backward: gradient ${formatShape(gi.shape)} for input ${formatShape(input.shape)}`);
          addGrad(grads, owned, input, gi);
        });
      }
      const stillUsed = new Set(grads.values());
      for (const u of used) if (u && !seeds.includes(u) && !stillUsed.has(u)) u.dispose();
    }
  });
}

/** A leaf's existing .grad, which an op may add its gradient into directly (GradNode.backward's `into`). */
function parameterGrad(t: Tensor): Tensor | null {
  return !t.node && t.requiresGrad && t.grad ? t.grad : null;
}

/** Adds a gradient contribution; a gradient another tensor may also hold is copied before summing into it. */
function addGrad(grads: Map<Tensor, Tensor>, owned: Set<Tensor>, input: Tensor, gi: Tensor): void {
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
}
