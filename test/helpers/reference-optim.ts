export interface AdamWHyper {
  betas: [number, number];
  eps: number;
  weightDecay: number;
}

/**
 * torch.optim.AdamW in float64: grads[step][param] (null where the parameter has no gradient at
 * that step, which then neither moves nor counts a step), learning rate lrs[step]. Returns the
 * parameters after every step and the final moments and step counts.
 */
export function adamwReference(initial: readonly ArrayLike<number>[], grads: readonly (ArrayLike<number> | null)[][], lrs: readonly number[], hyper: AdamWHyper) {
  const [beta1, beta2] = hyper.betas;
  const params = initial.map((p) => Float64Array.from(p));
  const m = params.map((p) => new Float64Array(p.length));
  const v = params.map((p) => new Float64Array(p.length));
  const steps = params.map(() => 0);
  const history: Float64Array[][] = [];
  for (const [step, stepGrads] of grads.entries()) {
    const lr = lrs[step];
    params.forEach((p, i) => {
      const g = stepGrads[i];
      if (!g) return;
      const t = ++steps[i];
      for (let j = 0; j < p.length; j++) {
        p[j] *= 1 - lr * hyper.weightDecay;
        m[i][j] = beta1 * m[i][j] + (1 - beta1) * g[j];
        v[i][j] = beta2 * v[i][j] + (1 - beta2) * g[j] * g[j];
        const denom = Math.sqrt(v[i][j]) / Math.sqrt(1 - beta2 ** t) + hyper.eps;
        p[j] -= (lr / (1 - beta1 ** t)) * (m[i][j] / denom);
      }
    });
    history.push(params.map((p) => p.slice()));
  }
  return { history, m, v, steps };
}
