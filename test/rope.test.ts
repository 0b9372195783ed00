import { describe, expect, it } from 'vitest';
import { backward } from '../src/autograd/backward.js';
import { rope } from '../src/ops/rope.js';
import { expectClose } from './helpers/check.js';
import { useGpu } from './helpers/gpu.js';
import { randn, rng } from './helpers/random.js';
import { ropeReference } from './helpers/reference-attention.js';
import { randnInput, testOp } from './helpers/test-op.js';
import { parseRopeScaling, ropeInverseFrequencies, type RopeScaling } from '../src/io/rope-scaling.js';
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

async function runRope(x: Float32Array, shape: number[], positions: number[], theta: number, tablePositions?: number, scaling?: RopeScaling): Promise<Float32Array> {
  const g = gpu();
  return g.tidy(() => g.keep(rope(g.tensor(x, shape), g.tensor(positions, shape.slice(0, 2), 'u32'), { theta, tablePositions, scaling }))).toArray();
}

interface TransformersRope {
  rotated: number[];
  inv_freq: number[];
  attention_scaling: number;
}

function transformersRope(request: { shape: number[]; theta: number; positions: number[]; x: Float32Array; rope_parameters?: Record<string, unknown>; max_position_embeddings?: number }): TransformersRope {
  return JSON.parse(runPython('rope_reference.py', [], JSON.stringify({ ...request, x: Array.from(request.x) }))) as TransformersRope;
}

interface RopeCase {
  name: string;
  shape: number[];
  theta: number;
  positionSeed: number;
  scaling?: RopeScaling;
}

/** rope against ropeReference (f32 frequencies and angles, as the op computes them, rotated in float64). */
function testRope(name: string, forward: RopeCase[], gradient: RopeCase[]): void {
  testOp(
    name,
    ([x, positions], c) => rope(x, positions, { theta: c.theta, scaling: c.scaling }),
    ([x, positions], c) => ropeReference(x, c.shape, positions, c.theta, 1, c.scaling && ropeInverseFrequencies(c.shape[3], c.theta, c.scaling)),
    forward,
    {
      gpu,
      inputs: (c) => [randnInput(c.shape, c.shape[3]), { data: positionIds(c.shape[0], c.shape[1], c.positionSeed), shape: c.shape.slice(0, 2), dtype: 'u32' }],
      tol: TOL,
      outShape: (c) => c.shape,
      label: (c) => c.name,
      gradient: { cases: gradient },
    },
  );
}

describe('rope forward', () => {
  testRope(
    'rope',
    [
      { name: 'theta 10000, odd T, 3 heads, D 16', shape: [2, 7, 3, 16], theta: 10000, positionSeed: 7 },
      { name: 'theta 100000, D 64, 9 heads', shape: [1, 13, 9, 64], theta: 100000, positionSeed: 13 },
      { name: 'one token, one head, D 2', shape: [1, 1, 1, 2], theta: 10000, positionSeed: 1 },
      { name: 'D 128, 5 heads', shape: [3, 5, 5, 128], theta: 500000, positionSeed: 5 },
    ],
    [],
  );

  it('matches transformers (LlamaRotaryEmbedding + apply_rotary_pos_emb) including large positions', async () => {
    for (const theta of [10000, 100000]) {
      const shape = [2, 5, 3, 64];
      const x = randn(shape.reduce((a, b) => a * b), 3);
      // Large positions make large angles, where rounding the angle to f32 first (as HF does) matters.
      const positions = [0, 1, 2, 3, 4, 8000, 8001, 8002, 8003, 8004];
      const expected = transformersRope({ shape, theta, positions, x }).rotated;
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
    // D/2 = 3: one pair per invocation rather than four.
    const odd = [1, 6, 2, 6];
    const y = randn(odd.reduce((a, b) => a * b), 5);
    expectClose(await runRope(y, odd, positions, 10000, 4), ropeReference(y, odd, positions, 10000), TOL, 'rope fallback, one pair per invocation');
  });
});

// Scaled RoPE as real checkpoints configure it (Llama 3.2, Qwen2.5 yarn, linear, dynamic), and
// awkward variants: untruncated yarn, mscale pairs, a head dim where llama3 has medium frequencies.
const SCALED: { name: string; headDim: number; theta: number; maxPositions: number; params: Record<string, unknown> }[] = [
  { name: 'llama3 (Llama 3.2)', headDim: 64, theta: 500000, maxPositions: 131072, params: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } },
  { name: 'llama3, D 128 (Llama 3.1)', headDim: 128, theta: 500000, maxPositions: 131072, params: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } },
  { name: 'linear, factor 2.5', headDim: 32, theta: 10000, maxPositions: 4096, params: { rope_type: 'linear', factor: 2.5 } },
  { name: 'dynamic (the default frequencies up to max_position_embeddings)', headDim: 48, theta: 10000, maxPositions: 16384, params: { rope_type: 'dynamic', factor: 4 } },
  { name: 'yarn (Qwen2.5 long context)', headDim: 64, theta: 1000000, maxPositions: 131072, params: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 32768 } },
  { name: 'yarn, untruncated, mscale pair, beta 16/2', headDim: 40, theta: 10000, maxPositions: 8192, params: { rope_type: 'yarn', factor: 3, original_max_position_embeddings: 2048, truncate: false, mscale: 0.9, mscale_all_dim: 0.7, beta_fast: 16, beta_slow: 2 } },
  { name: 'yarn, explicit attention_factor, factor from the lengths', headDim: 16, theta: 10000, maxPositions: 8192, params: { rope_type: 'yarn', factor: null, original_max_position_embeddings: 4096, attention_factor: 1.25 } },
];

describe('scaled rope against transformers', () => {
  for (const c of SCALED) {
    it(`${c.name}: the same f32 inverse frequencies and attention factor, and the same rotation`, async () => {
      const shape = [2, 4, 3, c.headDim];
      const x = randn(shape.reduce((a, b) => a * b), 31);
      const positions = [0, 1, 2, 3, 300, 1001, 4093, 8001];
      const reference = transformersRope({ shape, theta: c.theta, positions, x, rope_parameters: c.params, max_position_embeddings: c.maxPositions });
      const { scaling, theta } = parseRopeScaling({ rope_theta: c.theta, rope_parameters: c.params }, { source: 'config.json', maxPositions: c.maxPositions });
      const ours = ropeInverseFrequencies(c.headDim, theta, scaling);
      expect(Array.from(ours.invFreq)).toEqual(reference.inv_freq);
      expect(Math.fround(ours.attentionFactor)).toBe(Math.fround(reference.attention_scaling));
      // The frequencies must differ from plain RoPE, or this case checks nothing new.
      if (c.params.rope_type !== 'dynamic') expect(Array.from(ours.invFreq)).not.toEqual(Array.from(ropeInverseFrequencies(c.headDim, theta, { rope_type: 'default' }).invFreq));
      expectClose(await runRope(x, shape, positions, c.theta, undefined, scaling), reference.rotated, TOL, `${c.name} vs transformers`);
      // Past the host table the GPU's own cos/sin, times the attention factor.
      expectClose(await runRope(x, shape, positions, c.theta, 5, scaling), ropeReference(x, shape, positions, c.theta, 1, ours), TOL, `${c.name} fallback vs float64`);
    });
  }
});

describe('rope backward', () => {
  const { scaling } = parseRopeScaling({ rope_parameters: { rope_type: 'yarn', factor: 8, original_max_position_embeddings: 64 } }, { source: 'c', maxPositions: 512 });
  testRope('rope', [], [
    { name: 'theta 10000, [2, 3, 2, 8]', shape: [2, 3, 2, 8], theta: 10000, positionSeed: 5 },
    { name: 'D 6 (one pair per invocation), [2, 3, 2, 6]', shape: [2, 3, 2, 6], theta: 10000, positionSeed: 9 },
    { name: 'yarn scaling (attention factor ≠ 1), [2, 3, 2, 8]', shape: [2, 3, 2, 8], theta: 10000, positionSeed: 7, scaling },
  ]);

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
