/**
 * Every kernel in shaders/ checked on the current adapter against a float64 reference, without
 * vitest: the device self-check (`kernel-check.ts`) runs these on a machine that has only Node and
 * a driver, and `test/kernel-checks.test.ts` runs them here. Backward kernels are checked against
 * central differences of the float64 forward reference (exact to ~1e-9, far below f32 error), so
 * every op needs one forward reference only. Shapes are small and awkward (not multiples of
 * workgroup or subgroup sizes) and cover the kernels' different paths (matmul variants and
 * transposes, f16 weights, GQA, masks, broadcasting).
 */
import { backward } from '../../src/autograd/backward.js';
import { noGrad } from '../../src/autograd/grad-node.js';
import { sampleTokens } from '../../src/generate/sampler.js';
import type { Gpu } from '../../src/gpu/gpu.js';
import { shaderNames } from '../../src/gpu/shader-source.js';
import { numel, type Tensor } from '../../src/gpu/tensor.js';
import { parseHfConfig } from '../../src/io/hf-config.js';
import { KVCache } from '../../src/model/kv-cache.js';
import { TINY_CONFIG } from '../../src/model/tiny-config.js';
import { dropout, dropoutThreshold, streamBits, streamKey } from '../../src/nn/dropout.js';
import { accumulate, clone } from '../../src/autograd/accumulate.js';
import { attention } from '../../src/ops/attention.js';
import { add, div, mul, sub } from '../../src/ops/binary.js';
import { maskedMean } from '../../src/ops/cross-entropy.js';
import { embedding } from '../../src/ops/embedding.js';
import { concat, permute, slice } from '../../src/ops/layout.js';
import { matmulInto } from '../../src/ops/matmul.js';
import { forceMatmulVariant, MATMUL_VARIANTS, variantSupported } from '../../src/ops/matmul-variants.js';
import { argmax, max, mean, sum, sumAll } from '../../src/ops/reduce.js';
import { addRmsnorm, rmsnorm } from '../../src/ops/rmsnorm.js';
import { rope } from '../../src/ops/rope.js';
import { logSoftmax, softmax } from '../../src/ops/softmax.js';
import { swiglu } from '../../src/ops/swiglu.js';
import { tokenLogprobs } from '../../src/ops/token-logprobs.js';
import { unary, type UnaryOp } from '../../src/ops/unary.js';
import { AdamW } from '../../src/optim/adamw.js';
import { clipGradNorm } from '../../src/optim/grad-norm.js';
import { grpoLoss, type GrpoLossOptions } from '../../src/rl/grpo-loss.js';
import { mismatch, type Tolerance } from '../helpers/compare.js';
import { randn, rng, uniform } from '../helpers/random.js';
import { attentionBackwardReference, attentionReference, ropeReference } from '../helpers/reference-attention.js';
import { referenceGrpo } from '../helpers/reference-grpo.js';
import { matmulReference, roundToF16 } from '../helpers/reference-matmul.js';
import { adamwReference } from '../helpers/reference-optim.js';
import { logSoftmaxRef, rmsnormRef, rowsOf, softmaxRef } from '../helpers/reference-rows.js';

/** One compared output: problem is null when within tolerance, else what differs and by how much. */
export interface Comparison {
  label: string;
  problem: string | null;
  /** Why this comparison did not run on this adapter (e.g. no shader-f16); it then counts as neither. */
  skipped?: string;
}

const NO_F16 = 'the adapter has no shader-f16';
const skipped = (label: string, reason: string): Comparison => ({ label, problem: null, skipped: reason });

export interface KernelCheck {
  name: string;
  run(gpu: Gpu): Promise<Comparison[]>;
}

const compare = (label: string, actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance): Comparison => ({
  label,
  problem: mismatch(actual, expected, tol, label),
});

/** f32 elementwise and row-wise results: a few ulps of the operands. */
const F32: Tolerance = { atol: 1e-5, rtol: 1e-4 };
/** Sums over ~100 terms of size ~1 (products, reductions, their gradients). */
const F32_SUM: Tolerance = { atol: 1e-4, rtol: 1e-4 };

interface Input {
  data: Float32Array;
  shape: number[];
  /** Differentiate with respect to this input (checked against finite differences of the reference). */
  grad?: boolean;
}

type Reference = (inputs: Float64Array[]) => ArrayLike<number>;

/** d(Σ w·ref(inputs))/d(inputs[k]) by central differences in float64. */
function numericGradient(ref: Reference, inputs: Float64Array[], weights: ArrayLike<number>, k: number): Float64Array {
  const grad = new Float64Array(inputs[k].length);
  const loss = () => {
    const out = ref(inputs);
    let s = 0;
    for (let i = 0; i < out.length; i++) s += weights[i] * out[i];
    return s;
  };
  for (let i = 0; i < grad.length; i++) {
    const x = inputs[k][i];
    const h = 1e-6 * Math.max(1, Math.abs(x));
    inputs[k][i] = x + h;
    const plus = loss();
    inputs[k][i] = x - h;
    const minus = loss();
    inputs[k][i] = x;
    grad[i] = (plus - minus) / (2 * h);
  }
  return grad;
}

/**
 * Runs f on the GPU (forward, then backward with random output weights w) and compares the output
 * with ref and each differentiable input's gradient with the numeric gradient of Σ w·ref.
 */
async function checkOp(gpu: Gpu, label: string, inputs: Input[], f: (t: Tensor[]) => Tensor, ref: Reference, tol: Tolerance, gradTol = tol): Promise<Comparison[]> {
  const wantsGrad = inputs.some((x) => x.grad);
  const result = gpu.tidy(() => {
    const tensors = inputs.map((x) => {
      const t = gpu.tensor(x.data, x.shape);
      t.requiresGrad = x.grad === true;
      return t;
    });
    const y = wantsGrad ? f(tensors) : noGrad(() => f(tensors));
    const weights = randn(y.size, 17);
    if (wantsGrad) backward(y, gpu.tensor(weights, y.shape));
    return { y, weights, grads: tensors.map((t) => t.grad) };
  });
  const [y, ...grads] = await gpu.readAll([result.y, ...result.grads.filter((g): g is Tensor => g !== null)]);
  for (const t of [result.y, ...result.grads]) t?.dispose();
  const values = inputs.map((x) => Float64Array.from(x.data));
  const out = [compare(`${label}: forward`, y, ref(values), tol)];
  let next = 0;
  inputs.forEach((x, k) => {
    if (!x.grad) return;
    out.push(compare(`${label}: gradient of input ${k}`, grads[next++], numericGradient(ref, values, result.weights, k), gradTol));
  });
  return out;
}

/** Values at least 0.1 away from 0, so kinks (relu, max ties) sit outside the finite-difference steps. */
const awayFromZero = (data: Float32Array) => data.map((v) => v + Math.sign(v) * 0.1);

const matmulCheck: KernelCheck = {
  name: 'matmul (shaders matmul, matmul_tiled, matmul_skinny): every supported variant, all transposes, f16 B, batched, accumulate',
  async run(gpu) {
    const out: Comparison[] = [];
    const cases = [
      { m: 37, k: 70, n: 45, transA: false, transB: false },
      { m: 37, k: 70, n: 45, transA: true, transB: false },
      { m: 37, k: 70, n: 45, transA: false, transB: true },
      { m: 37, k: 70, n: 45, transA: true, transB: true },
      { m: 130, k: 96, n: 200, transA: false, transB: true, bF16: true },
      { m: 1, k: 96, n: 77, transA: false, transB: true },
      { m: 1, k: 96, n: 77, transA: false, transB: true, bF16: true },
      { m: 2, k: 64, n: 100, transA: false, transB: true },
      { m: 3, k: 33, n: 19, transA: false, transB: false, batch: 3 },
    ];
    const variants = MATMUL_VARIANTS.filter((v) => variantSupported(gpu, v));
    try {
      for (const variant of variants) {
        forceMatmulVariant(gpu, variant);
        for (const [i, c] of cases.entries()) {
          if (c.bF16 && !gpu.hasF16) {
            out.push(skipped(`${variant} case ${i} (f16 B)`, NO_F16));
            continue;
          }
          const batch = c.batch ?? 1;
          const aShape = [...(batch > 1 ? [batch] : []), ...(c.transA ? [c.k, c.m] : [c.m, c.k])];
          const bShape = [...(batch > 1 ? [batch] : []), ...(c.transB ? [c.n, c.k] : [c.k, c.n])];
          const a = randn(numel(aShape), 100 + i);
          const b = randn(numel(bShape), 200 + i);
          const initial = randn(batch * c.m * c.n, 300 + i);
          const expected = matmulReference(a, aShape, c.bF16 ? roundToF16(b) : b, bShape, c.transA, c.transB).map((v, j) => v + initial[j]);
          const tensors = [gpu.tensor(a, aShape), gpu.tensor(b, bShape, c.bF16 ? 'f16' : 'f32'), gpu.tensor(initial, [...(batch > 1 ? [batch] : []), c.m, c.n])];
          matmulInto(tensors[2], tensors[0], tensors[1], { transA: c.transA, transB: c.transB, accumulate: true });
          const actual = await tensors[2].toArray();
          tensors.forEach((t) => t.dispose());
          const shape = `${batch > 1 ? `${batch}×` : ''}${c.m}×${c.k}·${c.k}×${c.n}${c.transA ? ' Aᵀ' : ''}${c.transB ? ' Bᵀ' : ''}${c.bF16 ? ' f16 B' : ''}`;
          out.push(compare(`${variant} ${shape} (+= C)`, actual, expected, F32_SUM));
        }
      }
    } finally {
      forceMatmulVariant(gpu, undefined);
    }
    return out;
  },
};

const attentionCheck: KernelCheck = {
  name: 'attention (attention_forward, attention_backward_query, attention_backward_key, attention_decode): causal GQA with left padding, decode against a longer key range and over runs of sequences sharing keys',
  async run(gpu) {
    const out: Comparison[] = [];
    for (const { batch, queries, keys, qHeads, kvHeads, headDim } of [
      { batch: 2, queries: 19, keys: 19, qHeads: 6, kvHeads: 2, headDim: 16 },
      { batch: 3, queries: 1, keys: 23, qHeads: 4, kvHeads: 4, headDim: 64 },
    ]) {
      const shape = { batch, queries, keys, qHeads, kvHeads, headDim };
      const q = randn(batch * queries * qHeads * headDim, 1);
      const k = randn(batch * keys * kvHeads * headDim, 2);
      const v = randn(batch * keys * kvHeads * headDim, 3);
      const gradOut = randn(q.length, 4);
      const keyStart = Array.from({ length: batch }, (_, b) => (3 * b) % 5);
      const mask = { kvLength: keys, keyStart };
      const result = gpu.tidy(() => {
        const [tq, tk, tv] = [gpu.tensor(q, [batch, queries, qHeads, headDim]), gpu.tensor(k, [batch, keys, kvHeads, headDim]), gpu.tensor(v, [batch, keys, kvHeads, headDim])];
        for (const t of [tq, tk, tv]) t.requiresGrad = true;
        const y = attention(tq, tk, tv, { kvLength: keys, keyStart: gpu.tensor(keyStart, [batch], 'u32') });
        backward(y, gpu.tensor(gradOut, y.shape));
        return [y, tq.grad!, tk.grad!, tv.grad!];
      });
      const [y, gq, gk, gv] = await gpu.readAll(result);
      result.forEach((t) => t.dispose());
      const expected = attentionBackwardReference(shape, q, k, v, gradOut, mask);
      const label = `B=${batch} T=${queries} S=${keys} Hq=${qHeads} Hkv=${kvHeads} D=${headDim}`;
      out.push(
        compare(`${label}: output`, y, attentionReference(shape, q, k, v, mask), F32_SUM),
        compare(`${label}: dq`, gq, expected.gradQ, F32_SUM),
        compare(`${label}: dk`, gk, expected.gradK, F32_SUM),
        compare(`${label}: dv`, gv, expected.gradV, F32_SUM),
      );
    }
    out.push(await decodeRunsCheck(gpu));
    return out;
  },
};

/** attention_decode: 5 sequences in runs of 3 and 2 whose first 12 keys are copies, read through kvRows. */
async function decodeRunsCheck(gpu: Gpu): Promise<Comparison> {
  const shape = { batch: 5, queries: 1, keys: 23, qHeads: 9, kvHeads: 3, headDim: 64 };
  const [runs, shared, rowSize] = [[0, 3, 3, 2], 12, 23 * 3 * 64];
  const q = randn(5 * 9 * 64, 5);
  const [k, v] = [randn(5 * rowSize, 6), randn(5 * rowSize, 7)];
  // Copies of a run's first sequence's shared keys, as a gather of one prefilled prompt makes them.
  for (const t of [k, v]) for (const b of [1, 2, 4]) t.copyWithin(b * rowSize, (b < 3 ? 0 : 3) * rowSize, (b < 3 ? 0 : 3) * rowSize + shared * 3 * 64);
  const keyStart = [2, 2, 2, 0, 0];
  const y = gpu.tidy(() => {
    const kvShape = [5, 23, 3, 64];
    const sharedKeys = { runs: gpu.tensor(runs, [2, 2], 'u32'), severalRuns: 2, length: shared };
    return attention(gpu.tensor(q, [5, 1, 9, 64]), gpu.tensor(k, kvShape), gpu.tensor(v, kvShape), { keyStart: gpu.tensor(keyStart, [5], 'u32'), kvRows: gpu.tensor([0, 1, 2, 3, 4], [5], 'u32'), sharedKeys });
  });
  const [values] = await gpu.readAll([y]);
  y.dispose();
  return compare('decode over runs of 3 and 2 sharing 12 keys, Hq=9 Hkv=3 D=64: output', values, attentionReference(shape, q, k, v, { keyStart }), F32_SUM);
}

const ropeCheck: KernelCheck = {
  name: 'rope (rope): forward and backward',
  async run(gpu) {
    const shape = [2, 5, 3, 16];
    const positions = [0, 1, 2, 3, 4, 7, 8, 9, 10, 500];
    const theta = 10000;
    return checkOp(
      gpu,
      'rope [2, 5, 3, 16]',
      [{ data: randn(numel(shape), 5), shape, grad: true }],
      ([x]) => rope(x, gpu.tensor(positions, [2, 5], 'u32'), { theta }),
      ([x]) => ropeReference(x, shape, positions, theta),
      F32,
    );
  },
};

/** Applies a row reference to every row of row-major data. */
const byRows = (data: ArrayLike<number>, cols: number, f: (row: number[]) => number[]) => rowsOf(data, cols).flatMap(f);

const rowOpsCheck: KernelCheck = {
  name: 'row ops (rmsnorm, rmsnorm_backward, rmsnorm_weight_grad, softmax, softmax_backward): forward and gradients',
  async run(gpu) {
    const [rows, cols] = [7, 67];
    const x = () => ({ data: randn(rows * cols, 6), shape: [rows, cols], grad: true });
    return [
      ...(await checkOp(
        gpu,
        'rmsnorm [7, 67]',
        [x(), { data: uniform(cols, 7, 0.5, 1.5), shape: [cols], grad: true }],
        ([t, w]) => rmsnorm(t, w, 1e-5),
        ([t, w]) => byRows(t, cols, (row) => rmsnormRef(row, w, 1e-5)),
        F32,
        F32_SUM,
      )),
      ...(await checkOp(
        gpu,
        'addRmsnorm [7, 67] (normed output)',
        [x(), { data: randn(rows * cols, 8), shape: [rows, cols], grad: true }, { data: uniform(cols, 7, 0.5, 1.5), shape: [cols], grad: true }],
        ([a, b, w]) => addRmsnorm(a, b, w, 1e-5).normed,
        ([a, b, w]) => byRows(a.map((v, i) => v + b[i]), cols, (row) => rmsnormRef(row, w, 1e-5)),
        F32,
        F32_SUM,
      )),
      ...(await checkOp(gpu, 'softmax [7, 67]', [x()], ([t]) => softmax(t), ([t]) => byRows(t, cols, softmaxRef), F32)),
      ...(await checkOp(gpu, 'logSoftmax [7, 67]', [x()], ([t]) => logSoftmax(t), ([t]) => byRows(t, cols, logSoftmaxRef), F32)),
    ];
  },
};

const silu = (v: number) => v / (1 + Math.exp(-v));

const elementwiseCheck: KernelCheck = {
  name: 'elementwise (swiglu, swiglu_backward, binary, sum_to_shape, unary, unary_backward): forward and gradients, with broadcasting',
  async run(gpu) {
    const out: Comparison[] = [];
    const shape = [5, 3, 41];
    const n = numel(shape);
    out.push(
      ...(await checkOp(
        gpu,
        'swiglu [5, 3, 41]',
        [{ data: randn(n, 8), shape, grad: true }, { data: randn(n, 9), shape, grad: true }],
        ([g, u]) => swiglu(g, u),
        ([g, u]) => g.map((v, i) => silu(v) * u[i]),
        F32,
      )),
    );
    const binaries: [string, (a: Tensor, b: Tensor) => Tensor, (x: number, y: number) => number][] = [
      ['add', add, (x, y) => x + y],
      ['sub', sub, (x, y) => x - y],
      ['mul', mul, (x, y) => x * y],
      ['div', div, (x, y) => x / y],
    ];
    // b broadcasts over the middle axis: its gradient sums over it (sum_to_shape).
    const bShape = [5, 1, 41];
    for (const [name, op, ref] of binaries) {
      out.push(
        ...(await checkOp(
          gpu,
          `${name} [5, 3, 41] with [5, 1, 41]`,
          [{ data: randn(n, 10), shape, grad: true }, { data: awayFromZero(randn(numel(bShape), 11)), shape: bShape, grad: true }],
          ([a, b]) => op(a, b),
          ([a, b]) => a.map((v, i) => ref(v, b[Math.floor(i / (3 * 41)) * 41 + (i % 41)])),
          F32,
        )),
      );
    }
    const unaries: [UnaryOp, (v: number) => number, Float32Array][] = [
      ['exp', Math.exp, randn(n, 12)],
      ['log', Math.log, uniform(n, 13, 0.2, 3)],
      ['neg', (v) => -v, randn(n, 14)],
      ['sqrt', Math.sqrt, uniform(n, 15, 0.2, 3)],
      ['square', (v) => v * v, randn(n, 16)],
      ['relu', (v) => Math.max(0, v), awayFromZero(randn(n, 17))],
      ['sigmoid', (v) => 1 / (1 + Math.exp(-v)), randn(n, 18)],
      ['silu', silu, randn(n, 19)],
    ];
    for (const [op, ref, data] of unaries) {
      out.push(...(await checkOp(gpu, `${op} [5, 3, 41]`, [{ data, shape, grad: true }], ([x]) => unary(op, x), ([x]) => x.map(ref), F32)));
    }
    return out;
  },
};

const reduceCheck: KernelCheck = {
  name: 'reductions (reduce, reduce_backward, masked_mean, masked_mean_backward): sum, mean, max, sum of all, argmax, masked mean',
  async run(gpu) {
    const [rows, cols] = [6, 301];
    const shape = [rows, cols];
    const x = () => ({ data: randn(rows * cols, 20), shape, grad: true });
    const rowsRef = (f: (row: number[]) => number) => ([t]: Float64Array[]) => rowsOf(t, cols).map(f);
    const total = (row: number[]) => row.reduce((a, b) => a + b, 0);
    const out = [
      ...(await checkOp(gpu, 'sum [6, 301]', [x()], ([t]) => sum(t), rowsRef(total), F32_SUM)),
      ...(await checkOp(gpu, 'mean [6, 301]', [x()], ([t]) => mean(t), rowsRef((r) => total(r) / cols), F32)),
      ...(await checkOp(gpu, 'max [6, 301]', [x()], ([t]) => max(t), rowsRef((r) => Math.max(...r)), F32)),
      ...(await checkOp(gpu, 'sumAll [6, 301]', [x()], ([t]) => sumAll(t), ([t]) => [t.reduce((a, b) => a + b, 0)], F32_SUM)),
    ];
    const mask = Float32Array.from({ length: 300 }, (_, i) => (i % 7 === 3 ? 0 : 1));
    out.push(
      ...(await checkOp(
        gpu,
        'maskedMean [300]',
        [{ data: randn(300, 21), shape: [300], grad: true }],
        ([t]) => maskedMean(t, gpu.tensor(mask, [300])),
        ([t]) => [t.reduce((s, v, i) => s + v * mask[i], 0) / mask.reduce((a, b) => a + b, 0)],
        F32,
      )),
    );
    const data = randn(rows * cols, 22);
    const index = await noGrad(() => gpu.tidy(() => argmax(gpu.tensor(data, shape))));
    const actual = await gpu.readU32(index);
    index.dispose();
    out.push(compare('argmax [6, 301]', actual, rowsOf(data, cols).map((r) => r.indexOf(Math.max(...r))), { atol: 0, rtol: 0 }));
    return out;
  },
};

const layoutCheck: KernelCheck = {
  name: 'layout and copies (layout, accumulate): permute, slice, concat with gradients; clone, accumulate',
  async run(gpu) {
    const shape = [3, 4, 5];
    const n = numel(shape);
    const at = (i: number, j: number, k: number) => (i * 4 + j) * 5 + k;
    const out = [
      ...(await checkOp(
        gpu,
        'permute [3, 4, 5] → [5, 3, 4]',
        [{ data: randn(n, 23), shape, grad: true }],
        ([x]) => permute(x, [2, 0, 1]),
        ([x]) => Array.from({ length: n }, (_, o) => x[at(Math.floor(o / 4) % 3, o % 4, Math.floor(o / 12))]),
        F32,
      )),
      ...(await checkOp(
        gpu,
        'slice [3, 4, 5] axis 1 [1, 3)',
        [{ data: randn(n, 24), shape, grad: true }],
        ([x]) => slice(x, 1, 1, 3),
        ([x]) => Array.from({ length: 30 }, (_, o) => x[at(Math.floor(o / 10), 1 + (Math.floor(o / 5) % 2), o % 5)]),
        F32,
      )),
      ...(await checkOp(
        gpu,
        'concat [3, 4, 5] and [3, 2, 5] on axis 1',
        [{ data: randn(n, 25), shape, grad: true }, { data: randn(30, 26), shape: [3, 2, 5], grad: true }],
        ([a, b]) => concat([a, b], 1),
        ([a, b]) =>
          Array.from({ length: 90 }, (_, o) => {
            const [i, j, k] = [Math.floor(o / 30), Math.floor(o / 5) % 6, o % 5];
            return j < 4 ? a[at(i, j, k)] : b[(i * 2 + j - 4) * 5 + k];
          }),
        F32,
      )),
    ];
    const [accData, srcData] = [randn(1000, 27), randn(1000, 28)];
    const acc = gpu.tensor(accData, [1000]);
    const copy = clone(gpu.tensor(srcData, [1000]));
    accumulate(acc, copy);
    const [accumulated, cloned] = await gpu.readAll([acc, copy]);
    acc.dispose();
    copy.dispose();
    out.push(compare('clone [1000]', cloned, srcData, { atol: 0, rtol: 0 }), compare('accumulate [1000]', accumulated, accData.map((v, i) => v + srcData[i]), F32));
    return out;
  },
};

const embeddingCheck: KernelCheck = {
  name: 'embedding (embedding, embedding_grad_links, embedding_grad): f32 and f16 tables, repeated ids, gradient',
  async run(gpu) {
    const [vocab, dim] = [37, 24];
    const ids = Array.from({ length: 2 * 29 }, (_, i) => (i * 7) % 19);
    const table = randn(vocab * dim, 29);
    const gather = (t: ArrayLike<number>) => ids.flatMap((id) => Array.from({ length: dim }, (_, d) => t[id * dim + d]));
    const out = await checkOp(gpu, 'embedding [2, 29] from [37, 24]', [{ data: table, shape: [vocab, dim], grad: true }], ([t]) => embedding(gpu.tensor(ids, [2, 29], 'u32'), t), ([t]) => gather(t), F32);
    if (!gpu.hasF16) return [...out, skipped('embedding from an f16 table', NO_F16)];
    const half = await noGrad(() => gpu.tidy(() => embedding(gpu.tensor(ids, [2, 29], 'u32'), gpu.tensor(table, [vocab, dim], 'f16'))));
    out.push(compare('embedding from an f16 table', await half.toArray(), gather(roundToF16(table)), { atol: 0, rtol: 0 }));
    half.dispose();
    return out;
  },
};

const logprobsCheck: KernelCheck = {
  name: 'token log-probs (token_logprobs, token_logprobs_backward): log softmax at the targets and its gradient',
  async run(gpu) {
    const [rows, vocab] = [5, 333];
    const targets = Array.from({ length: rows }, (_, i) => (i * 389) % vocab);
    return checkOp(
      gpu,
      'tokenLogprobs [5, 333]',
      [{ data: randn(rows * vocab, 30, 3), shape: [rows, vocab], grad: true }],
      ([logits]) => tokenLogprobs(logits, gpu.tensor(targets, [rows], 'u32')),
      ([logits]) => rowsOf(logits, vocab).map((row, r) => logSoftmaxRef(row)[targets[r]]),
      F32,
    );
  },
};

const dropoutCheck: KernelCheck = {
  name: 'dropout (dropout): the mask from (seed, stream) and 1/(1−p) scaling, forward and gradient',
  async run(gpu) {
    const [p, seed, stream] = [0.3, 5, 2];
    const key = streamKey(seed, stream);
    const n = 2000;
    // The kernel keeps an element when the top 24 bits of its draw reach the threshold.
    const keep = Array.from({ length: n }, (_, i) => (streamBits(key, i) >>> 8 >= dropoutThreshold(p) ? 1 / (1 - p) : 0));
    return checkOp(gpu, 'dropout p=0.3 [2000]', [{ data: randn(n, 31), shape: [n], grad: true }], ([x]) => dropout(x, { p, seed, stream }), ([x]) => x.map((v, i) => v * keep[i]), F32);
  },
};

const cacheAndSamplingCheck: KernelCheck = {
  name: 'decoding (kv_cache_write, sample): cache writes at an offset and by row; greedy and top-k sampling',
  async run(gpu) {
    const config = parseHfConfig({ ...TINY_CONFIG, num_hidden_layers: 1, num_key_value_heads: 2, head_dim: 8 }, 'a one-layer cache');
    const [batch, capacity] = [3, 11];
    const cache = new KVCache(gpu, config, batch, capacity);
    const step = (steps: number, seed: number) => [randn(batch * steps * 16, seed), randn(batch * steps * 16, seed + 1)];
    const [k1, v1] = step(4, 32);
    const [k2, v2] = step(1, 34);
    cache.write(0, gpu.tensor(k1, [batch, 4, 2, 8]), gpu.tensor(v1, [batch, 4, 2, 8]));
    cache.length = 4;
    cache.write(0, gpu.tensor(k2, [batch, 1, 2, 8]), gpu.tensor(v2, [batch, 1, 2, 8]));
    // Sequence 1 leaves and the others swap: the next write lands in cache rows 2 and 0.
    cache.length = 5;
    cache.gatherRows([2, 0]);
    const [k3, v3] = [randn(2 * 16, 38), randn(2 * 16, 39)];
    cache.write(0, gpu.tensor(k3, [2, 1, 2, 8]), gpu.tensor(v3, [2, 1, 2, 8]));
    const [keys, values] = await gpu.readAll([cache.keys[0], cache.values[0]]);
    cache.dispose();
    const expectedCache = (first: Float32Array, second: Float32Array, third: Float32Array) =>
      Array.from({ length: batch * capacity * 16 }, (_, i) => {
        const [b, pos, e] = [Math.floor(i / (capacity * 16)), Math.floor(i / 16) % capacity, i % 16];
        if (pos === 5) return b === 2 ? third[e] : b === 0 ? third[16 + e] : 0;
        return pos < 4 ? first[(b * 4 + pos) * 16 + e] : pos === 4 ? second[b * 16 + e] : 0;
      });
    const exact = { atol: 0, rtol: 0 };
    const out = [compare('KV cache keys after writes of 4 and 1 positions, then 1 by row', keys, expectedCache(k1, k2, k3), exact), compare('KV cache values', values, expectedCache(v1, v2, v3), exact)];

    const [rows, vocab] = [64, 300];
    const logits = randn(rows * vocab, 36, 2);
    const t = gpu.tensor(logits, [rows, vocab]);
    const greedy = sampleTokens(t, { temperature: 0, topK: 0, topP: 1, minP: 0, seed: 1 }, 0);
    const topK = sampleTokens(t, { temperature: 1, topK: 3, topP: 1, minP: 0, seed: 1 }, 0);
    const [g, k] = [await gpu.readU32(greedy), await gpu.readU32(topK)];
    for (const x of [t, greedy, topK]) x.dispose();
    const ranked = rowsOf(logits, vocab).map((row) => row.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0]).map(([, i]) => i));
    out.push(compare('greedy sampling is the argmax', g, ranked.map((r) => r[0]), exact));
    // Top-3 draws must come from each row's top 3; which one is random, so compare membership.
    out.push(compare('top-k 3 draws fall in the top 3', Array.from(k, (id, r) => (ranked[r].slice(0, 3).includes(id) ? 1 : 0)), new Array<number>(rows).fill(1), exact));
    return out;
  },
};

const optimizerCheck: KernelCheck = {
  name: 'optimizer (adamw, grad_norm_partial, grad_norm_finish, grad_norm_clip): three AdamW steps, global norm and clipping',
  async run(gpu) {
    const shapes = [[7, 13], [5000]];
    const hyper = { betas: [0.9, 0.95] as [number, number], eps: 1e-8, weightDecay: 0.1 };
    const lrs = [1e-2, 3e-3, 2e-2];
    const initial = shapes.map((s, i) => randn(numel(s), 40 + i));
    const grads = lrs.map((_, step) => initial.map((p, i) => randn(p.length, 50 + 10 * step + i, 0.1)));
    const params = initial.map((p, i) => gpu.keep(gpu.tensor(p, shapes[i])));
    const opt = new AdamW(params, { lr: 1, ...hyper });
    for (const [step, stepGrads] of grads.entries()) {
      params.forEach((p, i) => (p.grad = gpu.keep(gpu.tensor(stepGrads[i], shapes[i]))));
      opt.step(lrs[step]);
      opt.zeroGrad();
    }
    const after = await gpu.readAll(params);
    opt.dispose();
    params.forEach((p) => p.dispose());
    const expected = adamwReference(initial, grads, lrs, hyper).history.at(-1)!;
    const out = after.map((p, i) => compare(`AdamW after 3 steps, parameter [${shapes[i]}]`, p, expected[i], { atol: 1e-6, rtol: 1e-5 }));

    const clipGrads = [randn(9000, 60, 0.05), randn(3, 61, 0.05)];
    const norm = Math.sqrt(clipGrads.reduce((s, g) => s + g.reduce((a, v) => a + v * v, 0), 0));
    const maxNorm = 0.5 * norm;
    const tensors = clipGrads.map((g) => gpu.tensor(g, [g.length]));
    const normTensor = clipGradNorm(tensors, maxNorm);
    const [gpuNorm, ...clipped] = await gpu.readAll([normTensor, ...tensors]);
    for (const t of [normTensor, ...tensors]) t.dispose();
    const factor = maxNorm / (norm + 1e-6);
    out.push(compare('global gradient norm', gpuNorm, [norm], F32));
    clipped.forEach((g, i) => out.push(compare(`clipped gradient ${i}`, g, clipGrads[i].map((v) => v * factor), F32)));
    return out;
  },
};

const grpoCheck: KernelCheck = {
  name: 'GRPO loss (grpo_loss, grpo_loss_finish): dapo and grpo with KL, loss and gradient',
  async run(gpu) {
    const out: Comparison[] = [];
    const [b, t] = [5, 13];
    const lengths = [13, 7, 1, 0, 10];
    const pick = rng(70);
    const logprobs = randn(b * t, 71).map((x) => -Math.abs(x) - 0.05);
    const old = logprobs.map((x) => x + 1.2 * (pick() - 0.5));
    const ref = logprobs.map((x) => x + 0.8 * (pick() - 0.5));
    const mask = new Float32Array(b * t);
    lengths.forEach((n, r) => mask.fill(1, r * t, r * t + n));
    const advantages = Float32Array.from({ length: b }, (_, r) => (r % 2 ? -1 : 1) * (0.3 + pick()));
    const c = { b, t, logprobs, old, ref, advantages, mask };
    const base: GrpoLossOptions = { beta: 0, epsilonLow: 0.2, epsilonHigh: 0.28, lossType: 'dapo', importanceSampling: 'token', klEstimator: 'k3', maxCompletionLength: t, numItemsInBatch: 31, gradientAccumulationSteps: 1, stepsPerGeneration: 1 };
    for (const options of [base, { ...base, lossType: 'grpo' as const, beta: 0.04 }]) {
      const result = gpu.tidy(() => {
        const lp = gpu.tensor(logprobs, [b, t]);
        lp.requiresGrad = true;
        const loss = grpoLoss(
          { logprobs: lp, oldLogprobs: gpu.tensor(old, [b, t]), refLogprobs: options.beta ? gpu.tensor(ref, [b, t]) : undefined, advantages: gpu.tensor(advantages, [b]), mask: gpu.tensor(mask, [b, t]) },
          options,
        ).loss;
        backward(loss);
        return [loss, lp.grad!];
      });
      const [loss, grad] = await gpu.readAll(result);
      result.forEach((x) => x.dispose());
      const expected = referenceGrpo(c, options);
      out.push(compare(`${options.lossType} β=${options.beta}: loss`, loss, [expected.loss], { atol: 3e-7, rtol: 2e-6 }), compare(`${options.lossType} β=${options.beta}: gradient`, grad, expected.grad, { atol: 1e-7, rtol: 2e-6 }));
    }
    return out;
  },
};

export const KERNEL_CHECKS: readonly KernelCheck[] = [
  matmulCheck,
  attentionCheck,
  ropeCheck,
  rowOpsCheck,
  elementwiseCheck,
  reduceCheck,
  layoutCheck,
  embeddingCheck,
  logprobsCheck,
  dropoutCheck,
  cacheAndSamplingCheck,
  optimizerCheck,
  grpoCheck,
];

export interface KernelCheckReport {
  passed: number;
  failed: { check: string; label: string; problem: string }[];
  skipped: { check: string; label: string; reason: string }[];
  /** Shaders in shaders/ that no check compiled: kernels this self-check does not cover. */
  unexercisedShaders: string[];
}

/** Runs every check on gpu, reporting each comparison through log; an exception counts as a failure. */
export async function runKernelChecks(gpu: Gpu, log: (line: string) => void): Promise<KernelCheckReport> {
  const report: KernelCheckReport = { passed: 0, failed: [], skipped: [], unexercisedShaders: [] };
  for (const check of KERNEL_CHECKS) {
    log(`\n${check.name}`);
    const started = performance.now();
    let comparisons: Comparison[];
    try {
      comparisons = await check.run(gpu);
      await gpu.sync();
    } catch (error) {
      comparisons = [{ label: 'the check threw', problem: error instanceof Error ? (error.stack ?? error.message) : String(error) }];
    }
    for (const c of comparisons) {
      if (c.skipped) {
        report.skipped.push({ check: check.name, label: c.label, reason: c.skipped });
        log(`  skip  ${c.label}: ${c.skipped}`);
      } else if (c.problem) {
        report.failed.push({ check: check.name, label: c.label, problem: c.problem });
        log(`  FAIL  ${c.problem}`);
      } else {
        report.passed++;
        log(`  ok    ${c.label}`);
      }
    }
    log(`  (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  }
  const compiled = gpu.kernels.compiledShaders();
  report.unexercisedShaders = shaderNames().filter((name) => !compiled.has(name));
  return report;
}
