import { noGrad } from '../../src/autograd/grad-node.js';
import type { Gpu } from '../../src/gpu/gpu.js';
import type { Tensor } from '../../src/gpu/tensor.js';
import { expectClose } from './check.js';

/**
 * Checks the gradient already stored in `param.grad` against central finite differences of a
 * scalar loss recomputed on the GPU, at the largest-gradient element (a clear signal) and
 * `randomProbes` random ones. Used for whole-model checks where the parameter lives inside a model.
 */
export async function checkParameterGradient(
  gpu: Gpu,
  param: Tensor,
  loss: () => Tensor,
  pick: () => number,
  label: string,
  randomProbes = 5,
): Promise<void> {
  const lossAt = async () => {
    const l = noGrad(() => gpu.tidy(() => gpu.keep(loss())));
    const v = (await l.toArray())[0];
    l.dispose();
    return v;
  };
  const grad = await param.grad!.toArray();
  const values = await param.toArray();
  let top = 0;
  grad.forEach((v, i) => (Math.abs(v) > Math.abs(grad[top]) ? (top = i) : 0));
  const indices = [top, ...Array.from({ length: randomProbes }, () => Math.floor(pick() * values.length))];
  const numeric: number[] = [];
  const eps = 1e-2;
  for (const i of indices) {
    const perturbed = values.slice();
    perturbed[i] = values[i] + eps;
    gpu.write(param, perturbed);
    const plus = await lossAt();
    perturbed[i] = values[i] - eps;
    gpu.write(param, perturbed);
    const minus = await lossAt();
    gpu.write(param, values);
    numeric.push((plus - minus) / (2 * eps));
  }
  // f32 loss differences over a 2·1e-2 step: a few 1e-4 absolute, a few % relative.
  expectClose(indices.map((i) => grad[i]), numeric, { atol: 3e-4, rtol: 3e-2 }, label);
}
