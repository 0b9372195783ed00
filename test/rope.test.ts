import { describe, expect, it } from 'vitest';
import { backward } from '../src/autograd/backward.js';
import { rope } from '../src/ops/rope.js';
import { expectClose } from './helpers/check.js';
import { useGpu } from './helpers/gpu.js';
import { gradcheck } from './helpers/gradcheck.js';
import { randn, rng } from './helpers/random.js';
import { ropeReference } from './helpers/reference-attention.js';
import { runPython } from './python/run-python.js';

const gpu = useGpu();

// The table holds correctly rounded f32 cos/sin of the same f32 angles the reference uses, so the
// only error is f32 rounding of x·cos ∓ y·sin: a few ulps of O(1) values.
const TOL = { atol: 1e-6, rtol: 1e-6 };

function positionIds(batch: number, queries: number, seed: number, maxStart = 50): number[] {
  // Per-row offsets, as left-padded prompts have.
  const u = rng(seed);
  return Array.from({ length: batch }, () => Math.floor(u() * maxStart)).flatMap((start) => Array.from({ length: queries }, (_, t) => start + t));
}

async function runRope(x: Float32Array, shape: number[], positions: number[], theta: number, tablePositions?: number): Promise<Float32Array> {
  const g = gpu();
  return g.tidy(() => g.keep(rope(g.tensor(x, shape), g.tensor(positions, shape.slice(0, 2), 'u32'), { theta, tablePositions }))).toArray();
}

describe('rope forward', () => {
  const cases: [string, number[], number][] = [
    ['theta 10000, odd T, 3 heads, D 16', [2, 7, 3, 16], 10000],
    ['theta 100000, D 64, 9 heads', [1, 13, 9, 64], 100000],
    ['one token, one head, D 2', [1, 1, 1, 2], 10000],
    ['D 128, 5 heads', [3, 5, 5, 128], 500000],
  ];
  for (const [name, shape, theta] of cases) {
    it(`matches the float64 reference: ${name}`, async () => {
      const x = randn(shape.reduce((a, b) => a * b), shape[3]);
      const positions = positionIds(shape[0], shape[1], shape[1]);
      expectClose(await runRope(x, shape, positions, theta), ropeReference(x, shape, positions, theta), TOL, 'rope');
    });
  }

  it('matches transformers (LlamaRotaryEmbedding + apply_rotary_pos_emb) including large positions', async () => {
    for (const theta of [10000, 100000]) {
      const shape = [2, 5, 3, 64];
      const x = randn(shape.reduce((a, b) => a * b), 3);
      // Large positions make large angles, where rounding the angle to f32 first (as HF does) matters.
      const positions = [0, 1, 2, 3, 4, 8000, 8001, 8002, 8003, 8004];
      const expected = JSON.parse(runPython('rope_reference.py', [], JSON.stringify({ shape, theta, positions, x: Array.from(x) }))) as number[];
      expectClose(await runRope(x, shape, positions, theta), expected, TOL, `rope vs transformers, theta ${theta}`);
    }
  });

  it('positions past the cos/sin table use the GPU cos/sin of the same f32 angle', async () => {
    const shape = [1, 6, 2, 32];
    const x = randn(shape.reduce((a, b) => a * b), 4);
    const positions = [2, 3, 4, 5, 8000, 8001];
    // WGSL only bounds cos/sin error on [-π, π]; lavapipe reduces the range itself and is as exact
    // as the table here (measured 2.4e-7 vs transformers at positions ~8000). A GPU with fast
    // approximate trigonometry would need its own bound; that is why the table exists.
    expectClose(await runRope(x, shape, positions, 10000, 4), ropeReference(x, shape, positions, 10000), TOL, 'rope fallback');
  });
});

describe('rope backward', () => {
  it('gradcheck', async () => {
    const shape = [2, 3, 2, 8];
    const positions = gpu().tensor(positionIds(2, 3, 5), [2, 3], 'u32');
    await gradcheck(gpu(), ([x]) => rope(x, positions, { theta: 10000 }), [{ data: randn(96, 21), shape }]);
  });

  it('is the rotation by the negative angle (an exact inverse of the forward)', async () => {
    const g = gpu();
    const shape = [2, 9, 3, 16];
    const positions = positionIds(2, 9, 6);
    const grad = randn(864, 22);
    const x = g.tensor(randn(864, 23), shape);
    x.requiresGrad = true;
    g.tidy(() => backward(rope(x, g.tensor(positions, [2, 9], 'u32'), { theta: 10000 }), g.tensor(grad, shape)));
    expectClose(await x.grad!.toArray(), ropeReference(grad, shape, positions, 10000, -1), TOL, 'rope backward');
  });
});

describe('rope errors name the op and the shapes', () => {
  it('rejects mismatched positions, odd head dims and bad theta', () => {
    const g = gpu();
    const x = g.empty([2, 3, 4, 8]);
    expect(() => rope(x, g.zeros([2, 4], 'u32'), { theta: 1e4 })).toThrow(/rope: positions must be u32 \[2, 3\] for x \[2, 3, 4, 8\], got u32 \[2, 4\]/);
    expect(() => rope(x, g.zeros([2, 3]), { theta: 1e4 })).toThrow(/rope: positions must be u32 \[2, 3\] for x \[2, 3, 4, 8\], got f32 \[2, 3\]/);
    expect(() => rope(g.empty([1, 1, 1, 7]), g.zeros([1, 1], 'u32'), { theta: 1e4 })).toThrow(/rope: head dim must be even, got x \[1, 1, 1, 7\]/);
    expect(() => rope(g.empty([3, 8]), g.zeros([3, 8], 'u32'), { theta: 1e4 })).toThrow(/rope: x \[B, T, H, D\] must have rank 4, got \[3, 8\]/);
    expect(() => rope(x, g.zeros([2, 3], 'u32'), { theta: 0 })).toThrow(/rope: theta must be positive, got 0/);
  });
});
