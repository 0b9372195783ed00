import { describe, expect, it } from 'vitest';
import { DEFAULT_SAMPLING, NON_FINITE_TOKEN, sampleTokens, type SamplingOptions } from '../src/generate/sampler.js';
import { useGpu } from './helpers/gpu.js';
import { randn } from './helpers/random.js';

const gpu = useGpu();

/** The distribution HF's warpers (temperature → top-k → top-p → min-p) leave, in float64. */
function referenceDistribution(logits: Float32Array, o: SamplingOptions): number[] {
  const n = logits.length;
  const max = Math.max(...logits);
  const z = Array.from(logits, (l) => (l - max) / o.temperature);
  let keep = z.map(() => true);
  const order = [...z.keys()].sort((a, b) => z[b] - z[a]);
  if (o.topK > 0 && o.topK < n) {
    const kth = z[order[o.topK - 1]];
    keep = z.map((v) => v >= kth);
  }
  if (o.topP < 1) {
    const total = z.reduce((s, v, i) => s + (keep[i] ? Math.exp(v) : 0), 0);
    // Keep token j when the kept mass strictly above it is < top_p (HF's cumulative rule).
    keep = z.map((v, i) => keep[i] && z.reduce((s, w, j) => s + (keep[j] && w > v ? Math.exp(w) : 0), 0) / total < o.topP);
  }
  if (o.minP > 0) keep = z.map((v, i) => keep[i] && Math.exp(v) >= o.minP);
  const mass = z.map((v, i) => (keep[i] ? Math.exp(v) : 0));
  const total = mass.reduce((a, b) => a + b, 0);
  return mass.map((m) => m / total);
}

async function frequencies(logits: Float32Array, options: SamplingOptions, rows: number): Promise<number[]> {
  const g = gpu();
  const tiled = new Float32Array(rows * logits.length);
  for (let r = 0; r < rows; r++) tiled.set(logits, r * logits.length);
  const tokens = await g.readU32(sampleTokens(g.tensor(tiled, [rows, logits.length]), options, 3));
  const counts = new Array<number>(logits.length).fill(0);
  for (const t of tokens) counts[t]++;
  return counts;
}

function expectMatchesDistribution(counts: number[], probs: number[]): void {
  const n = counts.reduce((a, b) => a + b, 0);
  counts.forEach((c, i) => {
    if (probs[i] === 0) expect(c, `token ${i} is filtered out but was drawn`).toBe(0);
    else {
      // 5 standard deviations of a binomial count: fails by chance about once in 3 million.
      const sd = Math.sqrt(n * probs[i] * (1 - probs[i]));
      expect(Math.abs(c - n * probs[i]), `token ${i}: ${c} draws, expected ${n * probs[i]}`).toBeLessThanOrEqual(5 * sd + 1);
    }
  });
}

const logits = Float32Array.from([2.0, 1.5, 1.5, 0.3, -1, 0.9, -3, 1.2, 0.0, 2.2, -0.5]);
const base: SamplingOptions = { temperature: 1, topK: 0, topP: 1, minP: 0, seed: 11 };

describe('sampleTokens', () => {
  it('greedy picks the first maximum of each row', async () => {
    const g = gpu();
    const rows = Float32Array.from([1, 5, 5, 2, /* row 2 */ -1, -2, -3, -0.5, /* row 3 */ 7, 7, 7, 7]);
    const tokens = await g.readU32(sampleTokens(g.tensor(rows, [3, 4]), { ...base, temperature: 0 }, 0));
    expect(Array.from(tokens)).toEqual([1, 3, 0]);
  });

  const settings: [string, Partial<SamplingOptions>][] = [
    ['plain softmax', {}],
    ['temperature 0.7', { temperature: 0.7 }],
    ['top-k 3', { topK: 3 }],
    ['top-k with a tie at the cut (ties kept, as in HF)', { topK: 2, temperature: 1.3 }],
    ['top-p 0.8', { topP: 0.8 }],
    ['top-k 6 then top-p 0.6', { topK: 6, topP: 0.6 }],
    ['min-p 0.2', { minP: 0.2, temperature: 0.9 }],
  ];
  for (const [name, options] of settings) {
    it(`draws from the reference distribution: ${name}`, async () => {
      const o = { ...base, ...options };
      expectMatchesDistribution(await frequencies(logits, o, 6000), referenceDistribution(logits, o));
    });
  }

  it('keeps exactly the reference set on a vocabulary-sized row', async () => {
    const big = randn(49152, 5, 3);
    const o = { ...base, topK: 50, topP: 0.9, temperature: 0.8 };
    const probs = referenceDistribution(big, o);
    const counts = await frequencies(big, o, 64);
    counts.forEach((c, i) => {
      if (c > 0) expect(probs[i], `token ${i} drawn but filtered out`).toBeGreaterThan(0);
    });
    expect(counts.filter((c) => c > 0).length).toBeGreaterThan(1);
  });

  it('is reproducible for a seed and step, and differs across steps and seeds', async () => {
    const g = gpu();
    const rows = g.tensor(randn(16 * 100, 9), [16, 100]);
    const a = await g.readU32(sampleTokens(rows, base, 5));
    const b = await g.readU32(sampleTokens(rows, base, 5));
    const c = await g.readU32(sampleTokens(rows, base, 6));
    const d = await g.readU32(sampleTokens(rows, { ...base, seed: 12 }, 5));
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
    expect(Array.from(a)).not.toEqual(Array.from(d));
  });

  it('keys each draw by drawRows: a subset of rows samples what those rows sampled in the full batch', async () => {
    const g = gpu();
    const logits = randn(16 * 100, 10);
    const full = await g.readU32(sampleTokens(g.tensor(logits, [16, 100]), base, 4));
    const picked = [13, 2, 7];
    const subset = g.tensor(picked.flatMap((r) => Array.from(logits.subarray(r * 100, (r + 1) * 100))), [3, 100]);
    const drawn = await g.readU32(sampleTokens(subset, base, 4, g.tensor(picked, [3], 'u32')));
    expect(Array.from(drawn)).toEqual(picked.map((r) => full[r]));
    const unkeyed = await g.readU32(sampleTokens(subset, base, 4));
    expect(Array.from(unkeyed)).not.toEqual(Array.from(drawn));
    expect(() => sampleTokens(subset, base, 4, g.tensor([1, 2], [2], 'u32'))).toThrow(/drawRows must be u32 \[3\]/);
  });

  it('marks a row whose logits hold NaN or ±inf with NON_FINITE_TOKEN, greedy or sampled, and samples the others', async () => {
    const g = gpu();
    const vocab = 300;
    const clean = randn(vocab, 8);
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const rows = new Float32Array(3 * vocab);
      for (let r = 0; r < 3; r++) rows.set(clean, r * vocab);
      rows[vocab + 257] = bad;
      for (const temperature of [0, 0.7]) {
        const tokens = await g.readU32(sampleTokens(g.tensor(rows, [3, vocab]), { ...DEFAULT_SAMPLING, temperature, topK: 5 }, 1));
        expect(tokens[1], `${bad} at temperature ${temperature}`).toBe(NON_FINITE_TOKEN);
        for (const row of [0, 2]) expect(tokens[row]).toBeLessThan(vocab);
      }
    }
  });

  it('rejects invalid options', () => {
    expect(() => sampleTokens(gpu().empty([1, 4]), { ...base, topP: 0 }, 0)).toThrow(/invalid options/);
    expect(() => sampleTokens(gpu().empty([4]), base, 0)).toThrow(/sampleTokens: logits must have rank 2/);
  });
});
