import { backward } from '../../src/autograd/backward.js';
import { noGrad } from '../../src/autograd/grad-node.js';
import type { Gpu } from '../../src/gpu/gpu.js';
import type { Tensor } from '../../src/gpu/tensor.js';
import { expectClose, type Tolerance } from './check.js';
import { randn, rng } from './random.js';

export interface GradInput {
  data: Float32Array;
  shape: number[];
  /** Inputs that are not differentiated (indices, masks) set this to false. */
  differentiable?: boolean;
}

export interface GradcheckOptions extends Partial<Tolerance> {
  eps?: number;
  /** Elements probed per input (a seeded random subset when the input is larger). */
  probes?: number;
  seed?: number;
}

/**
 * Checks autograd's gradients of L = Σ w·f(inputs) (w random) against central finite differences
 * of the GPU forward itself, evaluated in float64 on the host from read-back outputs.
 */
export async function gradcheck(gpu: Gpu, f: (inputs: Tensor[]) => Tensor, inputs: GradInput[], options: GradcheckOptions = {}): Promise<void> {
  const { eps = 1e-2, atol = 2e-3, rtol = 2e-2, probes = 24, seed = 7 } = options;

  const analytic = await gpu.tidy(() => {
    const tensors = inputs.map((x) => {
      const t = gpu.tensor(x.data, x.shape);
      t.requiresGrad = x.differentiable !== false;
      return t;
    });
    const y = f(tensors);
    const weights = gpu.tensor(randn(y.size, seed + 1), y.shape);
    backward(y, weights);
    return { grads: tensors.map((t) => t.grad), weights: y.size };
  });
  const w = randn(analytic.weights, seed + 1);

  const loss = async (values: Float32Array[]): Promise<number> => {
    const y = await noGrad(() => gpu.tidy(() => gpu.keep(f(values.map((v, i) => gpu.tensor(v, inputs[i].shape))))));
    const out = await y.toArray();
    y.dispose();
    let sum = 0;
    for (let i = 0; i < out.length; i++) sum += w[i] * out[i];
    return sum;
  };

  const pick = rng(seed);
  for (const [k, input] of inputs.entries()) {
    if (input.differentiable === false) continue;
    const grad = analytic.grads[k];
    if (!grad) throw new Error(`gradcheck: input ${k} got no gradient`);
    const full = await grad.toArray();
    grad.dispose();
    const n = input.data.length;
    const indices = n <= probes ? [...Array(n).keys()] : Array.from({ length: probes }, () => Math.floor(pick() * n));
    const numeric: number[] = [];
    for (const i of indices) {
      const plus = inputs.map((x) => x.data.slice());
      const minus = inputs.map((x) => x.data.slice());
      plus[k][i] += eps;
      minus[k][i] -= eps;
      // The perturbation actually applied after f32 rounding.
      const h = plus[k][i] - minus[k][i];
      numeric.push(((await loss(plus)) - (await loss(minus))) / h);
    }
    expectClose(indices.map((i) => full[i]), numeric, { atol, rtol }, `gradient of input ${k} [${input.shape}]`);
  }
}
