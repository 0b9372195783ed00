import { expect, it } from 'vitest';
import { backward } from '../../src/autograd/backward.js';
import type { Gpu } from '../../src/gpu/gpu.js';
import type { Tensor } from '../../src/gpu/tensor.js';
import { f16ArrayToF32, f32ArrayToF16 } from '../../src/io/half-precision.js';
import { expectClose, type Tolerance } from './check.js';
import { randn, rng } from './random.js';

export interface OpInput {
  /** The values; f16 inputs are rounded to f16 before the GPU and the reference see them. */
  data: ArrayLike<number>;
  shape: readonly number[];
  dtype?: 'f32' | 'f16' | 'u32';
  /** Whether the gradient is checked; default: f32 inputs are, f16 (frozen weights) and u32 (ids) are not. */
  differentiable?: boolean;
}

/** A randn f32 input of `shape`. */
export const randnInput = (shape: readonly number[], seed: number, scale = 1): OpInput => ({ data: randn(numel(shape), seed, scale), shape });

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/**
 * How the backward is checked: autograd's gradient of L = Σ w·op(inputs), w random (a random
 * projection of the output), against central differences of L computed on the float64 reference,
 * with a step of 1e-5·max(1, |x|). Those differences are exact to ~1e-9, so the tolerance measures
 * the GPU backward's own f32 error and nothing of the differencing; differences of the f32 GPU
 * forward instead (helpers/gradcheck.ts, for composite functions without a float64 reference) are
 * noisy at ~1e-3 and need tolerances near 1e-2.
 * With `backwardReference` (a float64 backward written out), every element of every gradient is
 * compared with it as well: differences probe a subset, which on large inputs can miss a wrong
 * region.
 */
export interface GradientCheck<C> {
  cases: readonly C[];
  /** The float64 gradients of Σ w·reference with respect to each input (null for those not differentiated). */
  backwardReference?: (values: readonly Float64Array[], outputGrad: Float64Array, c: C) => readonly (ArrayLike<number> | null)[];
  /** Default { atol: 1e-4, rtol: 1e-3 }. */
  tol?: Tolerance;
  /** Elements probed per input: all of them up to this many, else a seeded random subset (default 64). */
  probes?: number;
}

export interface OpTest<C> {
  /** The device the tests run on (from useGpu()). */
  gpu: () => Gpu;
  /** The inputs of a case; `seed` differs per case. */
  inputs: (c: C, seed: number) => OpInput[];
  /** Forward tolerance against the float64 reference, or a function of the inputs (sums scale with Σ|x|); 'exact' for ops that only move values. */
  tol: Tolerance | 'exact' | ((values: readonly Float64Array[], c: C) => Tolerance);
  /** The output shape the op must give (default: not checked). */
  outShape?: (c: C) => readonly number[];
  /** Shown in the test names; default JSON of the case. */
  label?: (c: C) => string;
  gradient?: GradientCheck<C>;
}

/** The values an input holds on the GPU, in float64. */
function deviceValues(input: OpInput): Float64Array {
  if (input.dtype === 'u32') return Float64Array.from(input.data);
  return Float64Array.from(input.dtype === 'f16' ? f16ArrayToF32(f32ArrayToF16(Float32Array.from(input.data))) : Float32Array.from(input.data));
}

const isDifferentiable = (input: OpInput): boolean => input.differentiable ?? (input.dtype ?? 'f32') === 'f32';

/**
 * Registers one test per case comparing the GPU op with its float64 reference, and one per
 * gradient case checking its backward by finite differences (see GradientCheck). A case with an
 * f16 input reports as skipped on an adapter without shader-f16.
 */
export function testOp<C>(
  name: string,
  gpuFn: (inputs: Tensor[], c: C) => Tensor,
  reference: (values: readonly Float64Array[], c: C) => ArrayLike<number>,
  cases: readonly C[],
  test: OpTest<C>,
): void {
  const label = test.label ?? ((c: C) => JSON.stringify(c));
  const needsF16 = (inputs: readonly OpInput[]) => inputs.some((x) => x.dtype === 'f16');
  const upload = (g: Gpu, inputs: readonly OpInput[], values: readonly Float64Array[]) =>
    inputs.map((x, i) => g.tensor(x.dtype === 'u32' ? Uint32Array.from(x.data) : Float32Array.from(values[i]), [...x.shape], x.dtype ?? 'f32'));

  cases.forEach((c, index) => {
    it(`${name} matches float64 for ${label(c)}`, async (ctx) => {
      const g = test.gpu();
      const inputs = test.inputs(c, 1000 + index);
      if (needsF16(inputs) && !g.hasF16) ctx.skip();
      const values = inputs.map(deviceValues);
      const out = g.tidy(() => g.keep(gpuFn(upload(g, inputs, values), c)));
      const actual = await out.toArray();
      const shape = [...out.shape];
      out.dispose();
      if (test.outShape) expect(shape, `${name} output shape`).toEqual(test.outShape(c));
      const expected = reference(values, c);
      if (test.tol === 'exact') expectClose(actual, expected, { atol: 0, rtol: 0 }, name);
      else expectClose(actual, expected, typeof test.tol === 'function' ? test.tol(values, c) : test.tol, name);
    });
  });

  const gradient = test.gradient;
  if (!gradient) return;
  gradient.cases.forEach((c, index) => {
    it(`${name} backward matches finite differences for ${label(c)}`, async (ctx) => {
      const g = test.gpu();
      const inputs = test.inputs(c, 2000 + index);
      if (needsF16(inputs) && !g.hasF16) ctx.skip();
      await referenceGradcheck(g, name, gpuFn, reference, c, inputs, gradient, upload);
    });
  });
}

async function referenceGradcheck<C>(
  g: Gpu,
  name: string,
  gpuFn: (inputs: Tensor[], c: C) => Tensor,
  reference: (values: readonly Float64Array[], c: C) => ArrayLike<number>,
  c: C,
  inputs: readonly OpInput[],
  check: GradientCheck<C>,
  upload: (g: Gpu, inputs: readonly OpInput[], values: readonly Float64Array[]) => Tensor[],
): Promise<void> {
  const { tol = { atol: 1e-4, rtol: 1e-3 }, probes = 64 } = check;
  const values = inputs.map(deviceValues);
  const outputSize = reference(values, c).length;
  const weights = randn(outputSize, outputSize + 3);
  const analytic = g.tidy(() => {
    const tensors = upload(g, inputs, values);
    tensors.forEach((t, i) => (t.requiresGrad = isDifferentiable(inputs[i])));
    const y = gpuFn(tensors, c);
    if (y.size !== outputSize) throw new Error(`${name}: the op gives ${y.size} values, the reference ${outputSize}`);
    backward(y, g.tensor(weights, [...y.shape]));
    return tensors.map((t, i) => {
      if (!isDifferentiable(inputs[i])) return null;
      if (!t.grad) throw new Error(`${name}: input ${i} got no gradient`);
      return g.keep(t.grad);
    });
  });
  const loss = (): number => {
    const out = reference(values, c);
    let sum = 0;
    for (let i = 0; i < outputSize; i++) sum += weights[i] * out[i];
    return sum;
  };
  const pick = rng(outputSize + 5);
  const written = check.backwardReference?.(values, Float64Array.from(weights), c);
  for (const [k, grad] of analytic.entries()) {
    if (!grad) continue;
    const full = await grad.toArray();
    grad.dispose();
    const label = `${name} gradient of input ${k} [${inputs[k].shape}]`;
    const expected = written?.[k];
    if (expected) expectClose(full, expected, tol, `${label} against the float64 backward`);
    const x = values[k];
    const indices = x.length <= probes ? [...x.keys()] : Array.from({ length: probes }, () => Math.floor(pick() * x.length));
    const numeric = indices.map((i) => {
      const at = x[i];
      const h = 1e-5 * Math.max(1, Math.abs(at));
      x[i] = at + h;
      const plus = loss();
      x[i] = at - h;
      const minus = loss();
      x[i] = at;
      return (plus - minus) / (2 * h);
    });
    expectClose(indices.map((i) => full[i]), numeric, tol, `${label} against finite differences`);
  }
}
