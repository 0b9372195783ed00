import { recordOp } from '../autograd/grad-node.js';
import { elementVectors } from '../gpu/kernel.js';
import type { Tensor } from '../gpu/tensor.js';
import { assertGradientFits } from './gradient.js';
import { assertF32, assertSameShape } from './shape.js';

const WG = 256;

/** silu(gate) ⊙ up for gate, up of the same shape [..., F]: Llama's MLP before down_proj. */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  assertF32('swiglu', gate, up);
  assertSameShape('swiglu', gate, up);
  const gpu = gate.gpu;
  const out = gpu.empty(gate.shape);
  const { values, invocations } = elementVectors(out.size);
  gpu.run(gpu.kernel('swiglu', values), [gate, up, out], gpu.grid1d(invocations, WG), { u32: [invocations] });
  return recordOp('swiglu', [gate, up], out, (g) => {
    assertGradientFits('swiglu', g, out);
    const dGate = gpu.empty(gate.shape);
    const dUp = gpu.empty(up.shape);
    gpu.run(gpu.kernel('swiglu_backward', values), [gate, up, g, dGate, dUp], gpu.grid1d(invocations, WG), { u32: [invocations] });
    // The kernel writes both; hand back only what autograd will consume.
    if (!gate.requiresGrad) dGate.dispose();
    if (!up.requiresGrad) dUp.dispose();
    return [gate.requiresGrad ? dGate : null, up.requiresGrad ? dUp : null];
  });
}
