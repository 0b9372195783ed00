import { describe, expect, it } from 'vitest';
import { backward } from '../src/autograd/backward.js';
import { noGrad } from '../src/autograd/grad-node.js';
import { sizeClass } from '../src/gpu/buffer-pool.js';
import type { Tensor } from '../src/gpu/tensor.js';
import { crossEntropy, maskedMean } from '../src/ops/cross-entropy.js';
import { tokenLogprobs, tokenLogprobsGradInto, tokenLogprobsInto } from '../src/ops/token-logprobs.js';
import { expectClose } from './helpers/check.js';
import { useGpu } from './helpers/gpu.js';
import { randn, rng, uniform } from './helpers/random.js';
import { randnInput, testOp } from './helpers/test-op.js';
import { runPython } from './python/run-python.js';

const gpu = useGpu();

interface Case {
  n: number;
  v: number;
  logits: Float32Array;
  targets: Uint32Array;
}

/** Logits of scale ~3 with one row shifted by +1000 (an overflow trap for a naive exp) and targets at both row ends. */
function makeCase(n: number, v: number, seed: number): Case {
  const logits = randn(n * v, seed, 3);
  if (n > 1) for (let j = 0; j < v; j++) logits[v + j] += 1000;
  const pick = rng(seed + 1);
  const targets = Uint32Array.from({ length: n }, (_, i) => (i === 0 ? v - 1 : i === n - 1 ? 0 : Math.floor(pick() * v)));
  return { n, v, logits, targets };
}

/** float64 log-softmax statistics of each row (of float64 logits too: finite differences perturb them below f32's resolution). */
function reference({ n, v, logits, targets }: { n: number; v: number; logits: ArrayLike<number>; targets: ArrayLike<number> }) {
  const logprobs = new Float64Array(n);
  const entropy = new Float64Array(n);
  const softmax = new Float64Array(n * v);
  for (let r = 0; r < n; r++) {
    const row = Array.from({ length: v }, (_, j) => logits[r * v + j]);
    let max = -Infinity;
    for (const x of row) max = Math.max(max, x);
    let sum = 0;
    for (const x of row) sum += Math.exp(x - max);
    const lse = max + Math.log(sum);
    logprobs[r] = row[targets[r]] - lse;
    for (let j = 0; j < v; j++) {
      const lp = row[j] - lse;
      softmax[r * v + j] = Math.exp(lp);
      entropy[r] -= Math.exp(lp) * lp;
    }
  }
  return { logprobs, entropy, softmax };
}

/** dlogits of Σ g·logprobs in float64. */
function gradReference(c: Case, g: ArrayLike<number>): Float64Array {
  const { softmax } = reference(c);
  const out = new Float64Array(c.n * c.v);
  for (let r = 0; r < c.n; r++) {
    for (let j = 0; j < c.v; j++) out[r * c.v + j] = g[r] * ((j === c.targets[r] ? 1 : 0) - softmax[r * c.v + j]);
  }
  return out;
}

function upload(c: Case): { logits: Tensor; targets: Tensor } {
  return { logits: gpu().tensor(c.logits, [c.n, c.v]), targets: gpu().tensor(c.targets, [c.n], 'u32') };
}

const base64 = (a: Float32Array): string => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');

// f32 sums of up to 49,152 exponentials leave ~1e-6 absolute error in the logsumexp (measured
// ≤ 1.5e-6 for logprobs and entropy at V = 49,152). On the row shifted by +1000 the logsumexp
// itself rounds to half an ulp of ~1000 (3e-5): allow one ulp there.
const LOGPROB_TOL = { atol: 5e-6, rtol: 1e-6 };
const SHIFTED_LOGPROB_TOL = { atol: 6.1e-5, rtol: 1e-6 };
// Each dlogit is g·(δ − p) with p = exp(x − lse): the logsumexp's error above becomes relative
// error in p (measured ≤ 2e-6, and 3e-5 on the shifted row).
const GRAD_TOL = { atol: 1e-7, rtol: 5e-5 };

describe('tokenLogprobs forward', () => {
  for (const [n, v] of [[1, 1], [1, 5], [7, 1000], [4, 4093], [3, 49152]]) {
    it(`matches a float64 reference for logits [${n}, ${v}] with entropy`, async () => {
      const c = makeCase(n, v, n * 131 + v);
      const ref = reference(c);
      const { logprobs, entropy } = gpu().tidy(() => {
        const { logits, targets } = upload(c);
        return tokenLogprobs(logits, targets, { withEntropy: true });
      });
      const lp = await logprobs.toArray();
      const h = await entropy.toArray();
      for (let r = 0; r < n; r++) {
        // Row 1 carries +1000 on every logit, so its values round at ulp(1000).
        const tol = r === 1 ? SHIFTED_LOGPROB_TOL : LOGPROB_TOL;
        expectClose([lp[r]], [ref.logprobs[r]], tol, `logprob row ${r}`);
        expectClose([h[r]], [ref.entropy[r]], tol, `entropy row ${r}`);
      }
      const plain = await gpu().tidy(() => gpu().keep(tokenLogprobs(upload(c).logits, upload(c).targets))).toArray();
      expect(Array.from(plain)).toEqual(Array.from(lp));
      logprobs.dispose();
      entropy.dispose();
    });
  }

  it('gives log 1 = 0 and entropy 0 for a vocabulary of one, and NaN for an out-of-range target', async () => {
    const g = gpu();
    const { logprobs, entropy } = g.tidy(() => tokenLogprobs(g.tensor([3.5, -2], [2, 1]), g.tensor([0, 1], [2], 'u32'), { withEntropy: true }));
    const lp = await logprobs.toArray();
    expect(lp[0]).toBe(0);
    expect(Number.isNaN(lp[1])).toBe(true);
    expect(Array.from(await entropy.toArray())).toEqual([0, 0]);
  });

  it('fills full-length outputs chunk by chunk from row slices of the logits', async () => {
    const g = gpu();
    const c = makeCase(9, 301, 5);
    const ref = reference(c);
    const [lp, h] = await g.tidy(() => {
      const targets = g.tensor(c.targets, [c.n], 'u32');
      const out = { logprobs: g.zeros([c.n]), logsumexp: g.zeros([c.n]), entropy: g.zeros([c.n]) };
      for (const [start, end] of [[0, 4], [4, 8], [8, 9]]) {
        const chunk = g.tensor(c.logits.subarray(start * c.v, end * c.v), [end - start, c.v]);
        tokenLogprobsInto(chunk, targets, out, start);
      }
      return [g.keep(out.logprobs), g.keep(out.entropy)];
    });
    for (let r = 0; r < c.n; r++) {
      const tol = r === 1 ? SHIFTED_LOGPROB_TOL : LOGPROB_TOL;
      expectClose([(await lp.toArray())[r]], [ref.logprobs[r]], tol, `chunked logprob row ${r}`);
      expectClose([(await h.toArray())[r]], [ref.entropy[r]], tol, `chunked entropy row ${r}`);
    }
  });

  it('keeps no logsumexp without a recorded backward, and takes a reshaped incoming gradient', async () => {
    const g = gpu();
    const c = makeCase(4, 9, 61);
    const { logits, targets } = upload(c);
    logits.requiresGrad = true;
    const live = g.pool.liveBytes;
    const lp = noGrad(() => tokenLogprobs(logits, targets));
    expect(lp.requiresGrad).toBe(false);
    expect(g.pool.liveBytes).toBe(live + sizeClass(4 * c.n));
    lp.dispose();

    const upstream = randn(c.n, 62);
    const dlogits = await g.tidy(() => {
      backward(tokenLogprobs(logits, targets), g.tensor(upstream, [2, 2]));
      return logits.grad!;
    }).toArray();
    expectClose(dlogits, gradReference(c, upstream), GRAD_TOL, 'dlogits from a [2, 2] gradient');
    for (const t of [logits, targets]) t.dispose();
  });

  it('rejects mismatched shapes and dtypes, naming the op and the shapes', () => {
    const g = gpu();
    g.tidy(() => {
      const logits = g.zeros([3, 5]);
      expect(() => tokenLogprobs(logits, g.zeros([4], 'u32'))).toThrow(/tokenLogprobs: logits \[3, 5\] and targets \[4\]/);
      expect(() => tokenLogprobs(logits, g.zeros([3]))).toThrow(/tokenLogprobs: targets must be u32, got f32 \[3\]/);
      expect(() => tokenLogprobs(g.zeros([15]), g.zeros([3], 'u32'))).toThrow(/tokenLogprobs: logits must have rank 2, got \[15\]/);
      expect(() => tokenLogprobsInto(logits, g.zeros([4], 'u32'), { logprobs: g.zeros([4]), logsumexp: g.zeros([4]) }, 2)).toThrow(
        /tokenLogprobs: logits \[3, 5\] at row offset 2 do not fit targets \[4\]/,
      );
      expect(() => tokenLogprobsInto(logits, g.zeros([3], 'u32'), { logprobs: g.zeros([2]), logsumexp: g.zeros([3]) })).toThrow(
        /tokenLogprobs: logprobs \[2\] does not match targets \[3\]/,
      );
      expect(() => crossEntropy(logits, g.zeros([3], 'u32'), g.zeros([5]))).toThrow(/crossEntropy: mask \[5\] does not match \[3\]/);
    });
  });
});

describe('tokenLogprobs backward', () => {
  testOp('tokenLogprobs', ([logits, targets]) => tokenLogprobs(logits, targets), ([logits, targets], [n, v]) => reference({ n, v, logits, targets }).logprobs, [], {
    gpu,
    inputs: ([n, v], seed) => [{ data: randn(n * v, seed, 2), shape: [n, v] }, { data: makeCase(n, v, 11).targets, shape: [n], dtype: 'u32' }],
    tol: LOGPROB_TOL,
    label: ([n, v]) => `logits [${n}, ${v}]`,
    gradient: { cases: [[5, 37]] },
  });

  for (const [n, v] of [[1, 1], [7, 1000], [3, 49152]]) {
    it(`matches a float64 reference for logits [${n}, ${v}]`, async () => {
      const g = gpu();
      const c = makeCase(n, v, n + v);
      const upstream = randn(n, 3);
      const dlogits = await g.tidy(() => {
        const { logits, targets } = upload(c);
        logits.requiresGrad = true;
        backward(tokenLogprobs(logits, targets), g.tensor(upstream, [n]));
        return logits.grad!;
      }).toArray();
      expectClose(dlogits, gradReference(c, upstream), GRAD_TOL, 'dlogits');
    });
  }

  it('accumulates chunk by chunk into a provided buffer, skipping rows whose gradient is zero', async () => {
    const g = gpu();
    const c = makeCase(6, 129, 21);
    const upstream = randn(c.n, 22);
    upstream[4] = 0;
    const initial = randn(c.n * c.v, 23);
    const expected = gradReference(c, upstream).map((d, i) => d + initial[i]);
    const [accumulated, written] = g.tidy(() => {
      const targets = g.tensor(c.targets, [c.n], 'u32');
      const gradLogprobs = g.tensor(upstream, [c.n]);
      const out = { logprobs: g.empty([c.n]), logsumexp: g.empty([c.n]) };
      const chunks = [[0, 2], [2, 5], [5, 6]].map(([start, end]) => ({
        start,
        logits: g.tensor(c.logits.subarray(start * c.v, end * c.v), [end - start, c.v]),
        accumulated: g.tensor(initial.subarray(start * c.v, end * c.v), [end - start, c.v]),
        written: g.tensor(initial.subarray(start * c.v, end * c.v), [end - start, c.v]),
      }));
      for (const chunk of chunks) tokenLogprobsInto(chunk.logits, targets, out, chunk.start);
      for (const chunk of chunks) {
        tokenLogprobsGradInto(chunk.logits, targets, out.logsumexp, gradLogprobs, chunk.accumulated, { rowOffset: chunk.start, accumulate: true });
        tokenLogprobsGradInto(chunk.logits, targets, out.logsumexp, gradLogprobs, chunk.written, { rowOffset: chunk.start });
      }
      return [chunks.map((ch) => ch.accumulated), chunks.map((ch) => ch.written)];
    });
    const read = async (ts: Tensor[]) => Float32Array.from((await Promise.all(ts.map((t) => t.toArray()))).flatMap((a) => Array.from(a)));
    // The initial values (~1) add their own rounding to the accumulated sums.
    expectClose(await read(accumulated), expected, { atol: 2e-7, rtol: 5e-5 }, 'accumulated dlogits');
    expectClose(await read(written), gradReference(c, upstream), GRAD_TOL, 'written dlogits');
  });

  it('stores dlogits in blocks of columns (the last narrower), written and accumulated', async () => {
    const g = gpu();
    const c = makeCase(5, 130, 31);
    const upstream = randn(c.n, 32);
    const initial = randn(c.n * c.v, 33);
    const blockWidth = 48;
    // Element (r, v) of a [n, v] matrix in blocks: block ⌊v/48⌋ holds [n, width] row-major.
    const blocked = (plain: ArrayLike<number>) => {
      const out = new Float64Array(c.n * c.v);
      for (let r = 0; r < c.n; r++) {
        for (let v = 0; v < c.v; v++) {
          const start = v - (v % blockWidth);
          out[start * c.n + r * Math.min(blockWidth, c.v - start) + v - start] = plain[r * c.v + v];
        }
      }
      return out;
    };
    const grad = gradReference(c, upstream);
    const tensors = g.tidy(() => {
      const targets = g.tensor(c.targets, [c.n], 'u32');
      const logits = g.tensor(c.logits, [c.n, c.v]);
      const out = { logprobs: g.empty([c.n]), logsumexp: g.empty([c.n]) };
      tokenLogprobsInto(logits, targets, out, 0);
      const writtenBlocks = g.empty([c.n, c.v]);
      const accumulatedBlocks = g.tensor(blocked(initial), [c.n, c.v]);
      tokenLogprobsGradInto(logits, targets, out.logsumexp, g.tensor(upstream, [c.n]), writtenBlocks, { blockWidth });
      tokenLogprobsGradInto(logits, targets, out.logsumexp, g.tensor(upstream, [c.n]), accumulatedBlocks, { blockWidth, accumulate: true });
      return [writtenBlocks, accumulatedBlocks];
    });
    const [written, accumulated] = await Promise.all(tensors.map((t) => t.toArray()));
    expectClose(written, blocked(grad), GRAD_TOL, 'written blocks');
    expectClose(accumulated, blocked(grad.map((d, i) => d + initial[i])), { atol: 2e-7, rtol: 5e-5 }, 'accumulated blocks');
    expect(() => tokenLogprobsGradInto(g.empty([1, 2]), g.tensor([0], [1], 'u32'), g.empty([1]), g.empty([1]), g.empty([1, 2]), { blockWidth: 1.5 })).toThrow(
      /tokenLogprobs backward: blockWidth must be a non-negative integer, got 1.5/,
    );
  });
});

describe('crossEntropy', () => {
  const mask = (n: number, seed: number) => Float32Array.from(uniform(n, seed, 0, 1), (u, i) => (i === 0 || u > 0.3 ? 1 : 0));

  for (const [n, v] of [[1, 1], [7, 1000], [3, 49152]]) {
    it(`matches a float64 masked mean NLL for logits [${n}, ${v}]`, async () => {
      const g = gpu();
      const c = makeCase(n, v, 2 * n + v);
      const m = mask(n, 9);
      const ref = reference(c);
      let num = 0;
      let den = 0;
      let plain = 0;
      for (let r = 0; r < n; r++) {
        num -= m[r] * ref.logprobs[r];
        den += m[r];
        plain -= ref.logprobs[r] / n;
      }
      const [masked, unmasked] = await g.tidy(() => {
        const { logits, targets } = upload(c);
        return [crossEntropy(logits, targets, g.tensor(m, [n])), crossEntropy(logits, targets)];
      });
      expectClose(await masked.toArray(), [num / den], SHIFTED_LOGPROB_TOL, 'masked loss');
      expectClose(await unmasked.toArray(), [plain], SHIFTED_LOGPROB_TOL, 'unmasked loss');
    });
  }

  const nll = ([logits, targets, weights]: readonly Float64Array[], [n, v]: number[]) => {
    const { logprobs } = reference({ n, v, logits, targets });
    const w = weights ?? new Float64Array(n).fill(1);
    return [-logprobs.reduce((s, lp, r) => s + w[r] * lp, 0) / w.reduce((a, b) => a + b, 0)];
  };
  const logitsAndTargets = ([n, v]: number[], seed: number) => [
    { data: randn(n * v, seed, 2), shape: [n, v] },
    { data: makeCase(n, v, 31).targets, shape: [n], dtype: 'u32' as const },
  ];
  const forLoss = { gpu, tol: SHIFTED_LOGPROB_TOL, label: ([n, v]: number[]) => `logits [${n}, ${v}]`, gradient: { cases: [[6, 19]] } };
  testOp('crossEntropy with a mask', ([x, t, m]) => crossEntropy(x, t, m), nll, [], {
    ...forLoss,
    inputs: (c, seed) => [...logitsAndTargets(c, seed), { data: mask(c[0], 32), shape: [c[0]], differentiable: false }],
  });
  testOp('crossEntropy', ([x, t]) => crossEntropy(x, t), nll, [], { ...forLoss, inputs: logitsAndTargets });

  it('maskedMean weights values and ignores NaN where the mask is 0', async () => {
    const g = gpu();
    const x = randn(300, 41);
    const m = uniform(300, 42, 0, 2);
    m[7] = 0;
    x[7] = NaN;
    let num = 0;
    let den = 0;
    for (let i = 0; i < x.length; i++) if (m[i] !== 0) (num += m[i] * x[i]), (den += m[i]);
    const out = await g.tidy(() => maskedMean(g.tensor(x, [300]), g.tensor(m, [300]))).toArray();
    expectClose(out, [num / den], { atol: 1e-6, rtol: 1e-5 }, 'masked mean');
  });
  testOp(
    'maskedMean',
    ([x, m]) => maskedMean(x, m),
    ([x, m]) => [x.reduce((s, v, i) => s + m[i] * v, 0) / m.reduce((a, b) => a + b, 0)],
    [],
    {
      gpu,
      inputs: () => {
        const m = uniform(300, 42, 0, 2);
        m[7] = 0;
        return [randnInput([300], 41), { data: m, shape: [300], differentiable: false }];
      },
      tol: { atol: 1e-6, rtol: 1e-5 },
      label: () => '[300] with a zero weight',
      gradient: { cases: [null] },
    },
  );
});

describe('against torch', () => {
  it('matches log_softmax + gather, entropy, F.cross_entropy and their gradients', async () => {
    const g = gpu();
    const cases = [makeCase(1, 1, 51), makeCase(7, 1000, 52), makeCase(3, 49152, 53)].map((c) => ({
      c,
      mask: Float32Array.from({ length: c.n }, (_, i) => (i % 3 === 2 ? 0 : 1)).fill(1, 0, 1),
      weights: randn(c.n, c.n + 54),
    }));
    const torch = JSON.parse(
      runPython(
        'logprobs_reference.py',
        [],
        JSON.stringify(cases.map(({ c, mask, weights }) => ({ n: c.n, v: c.v, logits: base64(c.logits), targets: Array.from(c.targets), mask: Array.from(mask), weights: Array.from(weights) }))),
      ),
    ) as { logprobs: number[]; entropy: number[]; grad_logprobs: number[]; loss: number; grad_loss: number[] }[];

    for (const [k, { c, mask, weights }] of cases.entries()) {
      const ref = torch[k];
      const out = g.tidy(() => {
        const { logits, targets } = upload(c);
        logits.requiresGrad = true;
        const { logprobs, entropy } = tokenLogprobs(logits, targets, { withEntropy: true });
        backward(logprobs, g.tensor(weights, [c.n]));
        const gradLogprobs = logits.grad!;
        logits.grad = null;
        const loss = crossEntropy(logits, targets, g.tensor(mask, [c.n]));
        backward(loss);
        return { logprobs, entropy, gradLogprobs, loss, gradLoss: logits.grad! };
      });
      const label = `[${c.n}, ${c.v}]`;
      // torch's f32 log_softmax has its own rounding: the bounds are the same as against float64.
      expectClose(await out.logprobs.toArray(), ref.logprobs, SHIFTED_LOGPROB_TOL, `logprobs ${label}`);
      expectClose(await out.entropy.toArray(), ref.entropy, SHIFTED_LOGPROB_TOL, `entropy ${label}`);
      expectClose(await out.loss.toArray(), [ref.loss], SHIFTED_LOGPROB_TOL, `loss ${label}`);
      expectClose(await out.gradLogprobs.toArray(), ref.grad_logprobs, GRAD_TOL, `dlogits of logprobs ${label}`);
      expectClose(await out.gradLoss.toArray(), ref.grad_loss, GRAD_TOL, `dlogits of loss ${label}`);
    }
  });
});
