import type { GradNode, Tensor } from '../gpu/tensor.js';

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording: inference, sampling, and the backward pass itself. */
export function noGrad<T>(fn: () => T): T {
  const previous = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = previous;
  }
}

/** Runs fn recording, also inside a noGrad section (a recomputation during the backward pass). */
export function withGrad<T>(fn: () => T): T {
  const previous = gradEnabled;
  gradEnabled = true;
  try {
    return fn();
  } finally {
    gradEnabled = previous;
  }
}

/**
 * Attaches a backward function to an op's output when any input needs a gradient. Ops call this
 * after recording their forward dispatches; `backward` closes over what it saved.
 */
export function recordOp(op: string, inputs: readonly Tensor[], output: Tensor, backward: GradNode['backward']): Tensor {
  if (gradEnabled && inputs.some((t) => t.requiresGrad)) {
    output.requiresGrad = true;
    output.node = { op, inputs, backward };
  }
  return output;
}
