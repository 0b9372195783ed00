import { describe, expect, it } from 'vitest';
import { backward } from '../src/autograd/backward.js';
import { attention, type AttentionOptions } from '../src/ops/attention.js';
import { expectClose } from './helpers/check.js';
import { useGpu } from './helpers/gpu.js';
import { randnInput, testOp, type OpInput } from './helpers/test-op.js';
import { attentionBackwardReference, attentionReference, type AttentionMask, type AttentionShape } from './helpers/reference-attention.js';

const gpu = useGpu();

// f32 dot products over D ≤ 64 terms and a softmax over ≤ 200 keys: errors stay near 1e-6 for
// O(1) outputs; 1e-5 leaves headroom without hiding a wrong mask or a missed rescale (those give
// errors of order 0.1).
const FORWARD_TOL = { atol: 1e-5, rtol: 1e-4 };
// Gradients sum up to T·Hq/Hkv terms of O(1) products.
const BACKWARD_TOL = { atol: 3e-5, rtol: 1e-4 };

interface Case extends AttentionShape {
  title: string;
  seed: number;
  mask?: AttentionMask;
}

function inputs(c: Case): OpInput[] {
  const { batch, queries, keys, qHeads, kvHeads, headDim } = c;
  return [
    randnInput([batch, queries, qHeads, headDim], c.seed),
    randnInput([batch, keys, kvHeads, headDim], c.seed + 1),
    randnInput([batch, keys, kvHeads, headDim], c.seed + 2),
  ];
}

function gpuOptions(c: Case): AttentionOptions {
  const g = gpu();
  return {
    kvLength: c.mask?.kvLength,
    scale: c.mask?.scale,
    window: c.mask?.window,
    keyStart: c.mask?.keyStart ? g.tensor(c.mask.keyStart, [c.batch], 'u32') : undefined,
  };
}

const shape = (batch: number, queries: number, keys: number, qHeads: number, kvHeads: number, headDim: number): AttentionShape => ({ batch, queries, keys, qHeads, kvHeads, headDim });
// 40 completion rows after a prompt: 120 query rows per kv head, keys in windows of 127 (512 bytes a key).
const windowedPrompt = shape(3, 40, 300, 6, 2, 64);
const windowedPromptMask: AttentionMask = { kvLength: 290, keyStart: [0, 100, 289] };

/** attention against the float64 reference, forward and (for `backward`) dq, dk, dv. */
function testAttention(name: string, forward: Case[], backward: Case[]): void {
  testOp(name, ([q, k, v], c) => attention(q, k, v, gpuOptions(c)), ([q, k, v], c) => attentionReference(c, q, k, v, c.mask), forward, {
    gpu,
    inputs,
    tol: FORWARD_TOL,
    outShape: (c) => [c.batch, c.queries, c.qHeads, c.headDim],
    label: (c) => c.title,
    gradient: {
      cases: backward,
      tol: BACKWARD_TOL,
      // Every element is compared with the written-out backward; the differences cross-check it on a few
      // (the float64 reference costs O(B·T·S·H·D) per probe).
      probes: 16,
      backwardReference: ([q, k, v], gradOut, c) => {
        const ref = attentionBackwardReference(c, q, k, v, gradOut, c.mask);
        return [ref.gradQ, ref.gradK, ref.gradV];
      },
    },
  });
}

describe('attention forward vs float64 reference', () => {
  testAttention(
    'attention',
    [
      { title: 'a single query and key', ...shape(1, 1, 1, 1, 1, 4), seed: 1 },
      { title: 'T = S = 17, GQA 6/2 heads, D = 16', ...shape(1, 17, 17, 6, 2, 16), seed: 2 },
      { title: 'T = S = 33, D = 64, 4 heads (MHA), batch 2', ...shape(2, 33, 33, 4, 4, 64), seed: 3 },
      { title: 'D = 128 with a custom scale', ...shape(1, 9, 9, 2, 1, 128), seed: 4, mask: { scale: 0.3 } },
      { title: 'decode: one query over a partly filled cache', ...shape(3, 1, 40, 9, 3, 32), seed: 5, mask: { kvLength: 29 } },
      { title: 'several new queries over a cache (chunked prefill)', ...shape(2, 5, 24, 4, 2, 16), seed: 6, mask: { kvLength: 19 } },
      { title: 'decode with keyStart and kvLength < S, batch 8', ...shape(8, 1, 64, 6, 2, 16), seed: 8, mask: { kvLength: 50, keyStart: [0, 3, 49, 50, 10, 0, 1, 20] } },
      { title: 'larger: B = 2, T = S = 200, 9/3 heads, D = 64', ...shape(2, 200, 200, 9, 3, 64), seed: 9 },
      { title: 'sliding window 5 over T = S = 23, GQA 6/2, with left padding', ...shape(2, 23, 23, 6, 2, 16), seed: 21, mask: { window: 5, keyStart: [0, 9] } },
      { title: 'sliding window of 1 (each query sees only itself)', ...shape(1, 11, 11, 3, 3, 8), seed: 22, mask: { window: 1 } },
      { title: 'sliding window in decode over a partly filled cache, batch 4', ...shape(4, 1, 48, 4, 1, 32), seed: 23, mask: { window: 7, kvLength: 41, keyStart: [0, 3, 36, 40] } },
      { title: 'sliding window 9 in chunked prefill', ...shape(2, 6, 30, 4, 2, 16), seed: 24, mask: { window: 9, kvLength: 25 } },
      { title: 'sliding window wider than the cache (changes nothing)', ...shape(2, 6, 30, 4, 2, 16), seed: 24, mask: { window: 1000, kvLength: 25 } },
      // ≥ 32 query rows per kv head run the windowed kernels; these cross their windows' edges.
      { title: 'windowed: 3 key windows, kvLength < S, keyStart (one row sees a single key)', ...windowedPrompt, seed: 31, mask: windowedPromptMask },
      { title: 'windowed: sliding window 50 across key windows, left padding', ...shape(2, 64, 256, 9, 3, 64), seed: 32, mask: { window: 50, keyStart: [0, 7] } },
    ],
    [],
  );
  it('left padding: keyStart masks keys, a fully masked row gives 0', async () => {
    // Batch 1 starts at key 7, so its queries at positions 0..6 see nothing; batch 2 masks all.
    const c: Case = { title: 'left padding', ...shape(3, 12, 12, 4, 2, 16), seed: 7, mask: { keyStart: [0, 7, 12] } };
    const g = gpu();
    const [q, k, v] = inputs(c).map((x) => Float32Array.from(x.data));
    const [qShape, kvShape] = [[3, 12, 4, 16], [3, 12, 2, 16]];
    const out = await g.tidy(() => g.keep(attention(g.tensor(q, qShape), g.tensor(k, kvShape), g.tensor(v, kvShape), gpuOptions(c)))).toArray();
    expect(out.every(Number.isFinite), 'finite outputs').toBe(true);
    expectClose(out, attentionReference(c, q, k, v, c.mask), FORWARD_TOL, 'attention forward');
    const rowSize = 4 * 16;
    expect(out.slice(12 * rowSize, 19 * rowSize).every((value) => value === 0)).toBe(true);
    expect(out.slice(24 * rowSize).every((value) => value === 0)).toBe(true);
  });
});
describe('attention over rows of k and v named by kvRows (a KV cache whose finished rows stay in place)', () => {
  // q has 3 rows; k and v hold 5, of which q's rows read 4, 0 and 2. Decode-shaped (the per-row
  // kernel) and one case with 36 query rows per kv head, which would take the windowed kernels.
  const cases: [string, AttentionShape, AttentionMask][] = [
    ['decode, GQA 9/3, D = 64, keyStart and kvLength < S', shape(3, 1, 40, 9, 3, 64), { kvLength: 33, keyStart: [0, 5, 32] }],
    ['several queries, sliding window', shape(3, 4, 24, 36, 1, 16), { kvLength: 20, window: 6 }],
  ];
  for (const [title, c, mask] of cases) {
    it(title, async () => {
      const g = gpu();
      const kvRows = [4, 0, 2];
      const cacheRows = 5;
      const rowSize = c.keys * c.kvHeads * c.headDim;
      const [q] = inputs({ title, ...c, seed: 41 }).map((x) => Float32Array.from(x.data));
      const [k, v] = [42, 43].map((seed) => Float32Array.from(randnInput([cacheRows, c.keys, c.kvHeads, c.headDim], seed).data));
      const picked = (t: Float32Array) => Float32Array.from(kvRows.flatMap((r) => Array.from(t.subarray(r * rowSize, (r + 1) * rowSize))));
      const out = await g
        .tidy(() => {
          const kvShape = [cacheRows, c.keys, c.kvHeads, c.headDim];
          const options = { ...gpuOptions({ title, ...c, seed: 41, mask }), kvRows: g.tensor(kvRows, [3], 'u32') };
          return g.keep(attention(g.tensor(q, [3, c.queries, c.qHeads, c.headDim]), g.tensor(k, kvShape), g.tensor(v, kvShape), options));
        })
        .toArray();
      expectClose(out, attentionReference(c, q, picked(k), picked(v), mask), FORWARD_TOL, title);
    });
  }

  it('has no backward, and kvRows must be u32 [B]', () => {
    const g = gpu();
    const [q, k, v] = [g.empty([2, 1, 2, 16]), g.empty([3, 8, 2, 16]), g.empty([3, 8, 2, 16])];
    expect(() => attention(q, k, v, { kvRows: g.zeros([3], 'u32') })).toThrow(/attention: kvRows must be u32 \[2\], got u32 \[3\]/);
    q.requiresGrad = true;
    expect(() => attention(q, k, v, { kvRows: g.zeros([2], 'u32') })).toThrow(/attention: kvRows \(a KV cache read by row\) has no backward/);
  });
});

describe('decode attention over runs of sequences that share their first keys (sharedKeys)', () => {
  // Sequences in runs of up to 4 read a run's first `length` keys from its first sequence's rows
  // (the others' copies hold other values here, so reading them would show) and the rest from
  // their own. kvRows, when given, permutes the cache rows (else it is the identity).
  interface DecodeCase {
    title: string;
    c: AttentionShape;
    mask: AttentionMask;
    runs: [number, number][];
    length: number;
    kvRows?: number[];
  }
  const cases: DecodeCase[] = [
    {
      title: 'GQA 9/3 (vec3), D = 64, runs of 4, 2 and 1, kvRows, keyStart per run',
      c: shape(7, 1, 40, 9, 3, 64),
      mask: { kvLength: 33, keyStart: [3, 3, 3, 3, 0, 0, 30] },
      runs: [[0, 4], [4, 2], [6, 1]],
      length: 20,
      kvRows: [8, 1, 0, 3, 7, 5, 2],
    },
    { title: 'GQA 4/2 (vec2), sliding window across the shared part, a run of 4 split', c: shape(5, 1, 24, 4, 2, 16), mask: { kvLength: 24, window: 9 }, runs: [[0, 4], [4, 1]], length: 18 },
    { title: 'GQA 4/1 (vec4), shared part longer than the keys seen, D = 8', c: shape(3, 1, 16, 4, 1, 8), mask: { kvLength: 11, keyStart: [2, 2, 2] }, runs: [[0, 3]], length: 14 },
    { title: 'nothing shared: runs of one, length 0', c: shape(3, 1, 30, 9, 3, 64), mask: { kvLength: 29, keyStart: [0, 4, 28] }, runs: [[0, 1], [1, 1], [2, 1]], length: 0 },
  ];

  /** Runs the decode kernel; returns its output and the keys and values each sequence sees, for the reference. */
  async function decode({ title, c, mask, runs, length, kvRows }: DecodeCase, seed: number) {
    const g = gpu();
    const cacheRows = kvRows ? Math.max(...kvRows) + 1 : c.batch;
    const rowSize = c.keys * c.kvHeads * c.headDim;
    const [q] = inputs({ title, ...c, seed }).map((x) => Float32Array.from(x.data));
    const [k, v] = [seed + 1, seed + 2].map((s) => Float32Array.from(randnInput([cacheRows, c.keys, c.kvHeads, c.headDim], s).data));
    const cacheRow = (b: number) => kvRows?.[b] ?? b;
    const seen = (t: Float32Array) =>
      Float32Array.from(
        Array.from({ length: c.batch }, (_, b) => {
          const [first] = runs.find(([f, n]) => b >= f && b < f + n)!;
          const split = Math.min(length, c.keys) * c.kvHeads * c.headDim;
          const own = t.subarray(cacheRow(b) * rowSize, (cacheRow(b) + 1) * rowSize);
          return [...t.subarray(cacheRow(first) * rowSize, cacheRow(first) * rowSize + split), ...own.subarray(split)];
        }).flat(),
      );
    const out = await g
      .tidy(() => {
        const kvShape = [cacheRows, c.keys, c.kvHeads, c.headDim];
        const options: AttentionOptions = {
          ...gpuOptions({ title, ...c, seed, mask }),
          kvRows: g.tensor(Array.from({ length: c.batch }, (_, b) => cacheRow(b)), [c.batch], 'u32'),
          sharedKeys: { runs: g.tensor(runs.flat(), [runs.length, 2], 'u32'), severalRuns: runs.filter(([, n]) => n > 1).length, length },
        };
        return g.keep(attention(g.tensor(q, [c.batch, 1, c.qHeads, c.headDim]), g.tensor(k, kvShape), g.tensor(v, kvShape), options));
      })
      .toArray();
    return { out, q, k: seen(k), v: seen(v) };
  }

  for (const d of cases) {
    it(d.title, async () => {
      const { out, q, k, v } = await decode(d, 51);
      expect(out.every(Number.isFinite)).toBe(true);
      expectClose(out, attentionReference(d.c, q, k, v, d.mask), FORWARD_TOL, d.title);
    });
  }

  it('gives a sequence the same bits in any run and at any shared length when the keys are equal', async () => {
    const c = shape(6, 1, 40, 9, 3, 64);
    const mask = { kvLength: 37, keyStart: [5, 5, 5, 5, 5, 5] };
    // Every sequence reads cache row 0, so each split of the keys sees the same values.
    const base = { title: 'equal keys', c, mask, kvRows: [0, 0, 0, 0, 0, 0] };
    const alone = await decode({ ...base, runs: [0, 1, 2, 3, 4, 5].map((b): [number, number] => [b, 1]), length: 0 }, 61);
    for (const [runs, length] of [[[[0, 4], [4, 2]], 23], [[[0, 2], [2, 3], [5, 1]], 36], [[[0, 3], [3, 3]], 40]] as [[number, number][], number][]) {
      const grouped = await decode({ ...base, runs, length }, 61);
      expect(grouped.out).toEqual(alone.out);
    }
  });

  it('has no backward, and needs kvRows, T = 1 and runs u32 [R, 2]', () => {
    const g = gpu();
    const [q, k, v] = [g.empty([2, 1, 4, 16]), g.empty([2, 8, 2, 16]), g.empty([2, 8, 2, 16])];
    const [runs, kvRows] = [g.tensor([0, 2], [1, 2], 'u32'), g.tensor([0, 1], [2], 'u32')];
    const sharedKeys = { runs, severalRuns: 1, length: 3 };
    expect(() => attention(q, k, v, { sharedKeys })).toThrow(/attention: sharedKeys needs kvRows/);
    expect(() => attention(q, k, v, { kvRows, sharedKeys: { ...sharedKeys, runs: g.zeros([2], 'u32') } })).toThrow(/attention: sharedKeys needs T = 1, runs u32 \[R, 2\] of which severalRuns ≤ R/);
    expect(() => attention(q, k, v, { kvRows, sharedKeys: { ...sharedKeys, severalRuns: 2 } })).toThrow(/severalRuns 2/);
    expect(() => attention(g.empty([2, 2, 4, 16]), k, v, { kvRows, sharedKeys })).toThrow(/got T = 2/);
    q.requiresGrad = true;
    expect(() => attention(q, k, v, { kvRows, sharedKeys })).toThrow(/attention: kvRows \(a KV cache read by row\) has no backward/);
  });
});

describe('attention backward', () => {
  testAttention(
    'attention',
    [],
    [
      { title: 'a small causal GQA shape', ...shape(2, 5, 5, 4, 2, 8), seed: 11 },
      { title: 'kvLength < S and keyStart', ...shape(2, 3, 9, 3, 1, 4), seed: 12, mask: { kvLength: 7, keyStart: [2, 0] } },
      { title: 'T = S = 17, 6/2 heads, D = 16', ...shape(1, 17, 17, 6, 2, 16), seed: 13 },
      { title: 'T = S = 33, 9/3 heads, D = 64, batch 2', ...shape(2, 33, 33, 9, 3, 64), seed: 14 },
      { title: 'padding and a fully masked row', ...shape(3, 10, 10, 4, 1, 32), seed: 15, mask: { keyStart: [0, 4, 10] } },
      { title: 'a partly filled cache', ...shape(2, 6, 20, 2, 2, 16), seed: 16, mask: { kvLength: 15 } },
      { title: 'completions after a shared prompt (T < S = kvLength, left-padded prompts)', ...shape(4, 7, 19, 4, 2, 16), seed: 18, mask: { kvLength: 19, keyStart: [0, 5, 12, 3] } },
      { title: 'queries at the end of a longer key range with keyStart', ...shape(2, 3, 8, 2, 1, 4), seed: 19, mask: { keyStart: [4, 1] } },
      { title: 'a sliding window, kvLength < S and keyStart', ...shape(2, 7, 11, 4, 2, 4), seed: 25, mask: { kvLength: 10, keyStart: [0, 3], window: 3 } },
      { title: 'sliding window 6: T = S = 37, 6/2 heads, D = 16, padding', ...shape(2, 37, 37, 6, 2, 16), seed: 26, mask: { window: 6, keyStart: [0, 5] } },
      { title: 'window 4 over a partly filled cache, MHA D = 64', ...shape(2, 9, 21, 3, 3, 64), seed: 27, mask: { window: 4, kvLength: 18 } },
      { title: 'windowed: 3 key windows, kvLength < S, keyStart', ...windowedPrompt, seed: 33, mask: windowedPromptMask },
      { title: 'windowed: 100 positions in 4 query windows, 9/3 heads, D = 64', ...shape(1, 100, 100, 9, 3, 64), seed: 34 },
      { title: 'windowed: sliding window 20 across windows, padding', ...shape(2, 48, 180, 6, 2, 64), seed: 35, mask: { window: 20, keyStart: [0, 150], kvLength: 170 } },
    ],
  );
  it('only the inputs that need gradients get them', async () => {
    const g = gpu();
    const c: Case = { title: 'v only', ...shape(1, 4, 4, 2, 1, 8), seed: 17 };
    const [qData, kData, vData] = inputs(c).map((x) => Float32Array.from(x.data));
    const [q, k, v] = [g.tensor(qData, [1, 4, 2, 8]), g.tensor(kData, [1, 4, 1, 8]), g.tensor(vData, [1, 4, 1, 8])];
    v.requiresGrad = true;
    g.tidy(() => backward(attention(q, k, v)));
    expect(q.grad).toBeNull();
    expect(k.grad).toBeNull();
    expectClose(await v.grad!.toArray(), attentionBackwardReference(c, qData, kData, vData, new Float32Array(qData.length).fill(1)).gradV, BACKWARD_TOL, 'dv');
  });
});

describe('attention errors name the op and the shapes', () => {
  const t = (shape: number[]) => gpu().empty(shape);
  it('rejects bad head counts, dims and masks', () => {
    expect(() => attention(t([1, 4, 6, 16]), t([1, 4, 4, 16]), t([1, 4, 4, 16]))).toThrow(/attention: query heads \(6\) must be a multiple of kv heads \(4\): q \[1, 4, 6, 16\], k \[1, 4, 4, 16\]/);
    expect(() => attention(t([1, 4, 2, 16]), t([1, 4, 2, 8]), t([1, 4, 2, 8]))).toThrow(/attention: head dims differ: q \[1, 4, 2, 16\], k \[1, 4, 2, 8\]/);
    expect(() => attention(t([1, 4, 2, 16]), t([1, 4, 2, 16]), t([1, 5, 2, 16]))).toThrow(/attention: k and v shapes differ/);
    expect(() => attention(t([2, 4, 2, 16]), t([1, 4, 2, 16]), t([1, 4, 2, 16]))).toThrow(/attention: batch sizes differ: q \[2, 4, 2, 16\]/);
    expect(() => attention(t([4, 2, 16]), t([1, 4, 2, 16]), t([1, 4, 2, 16]))).toThrow(/attention: q \[B, T, Hq, D\] must have rank 4, got \[4, 2, 16\]/);
    expect(() => attention(t([1, 4, 2, 6]), t([1, 4, 2, 6]), t([1, 4, 2, 6]))).toThrow(/attention: head dim must be a multiple of 4/);
    expect(() => attention(t([1, 5, 2, 16]), t([1, 8, 2, 16]), t([1, 8, 2, 16]), { kvLength: 4 })).toThrow(/attention: kvLength 4 must be an integer in \[T, S\] = \[5, 8\]/);
    expect(() => attention(t([2, 1, 2, 16]), t([2, 8, 2, 16]), t([2, 8, 2, 16]), { keyStart: gpu().zeros([3], 'u32') })).toThrow(/attention: keyStart must be u32 \[2\], got u32 \[3\]/);
    expect(() => attention(t([1, 4, 2, 16]), t([1, 4, 2, 16]), t([1, 4, 2, 16]), { window: 0 })).toThrow(/attention: window must be a positive integer, got 0/);
    expect(() => attention(gpu().empty([1, 1, 1, 4], 'f16'), t([1, 1, 1, 4]), t([1, 1, 1, 4]))).toThrow(/attention: expected f32, got f16 \[1, 1, 1, 4\]/);
  });
});

describe('attention with queryLengths (padding queries of a [B, W] training batch skipped)', () => {
  // Rows t ≥ queryLengths[b] are padding: their outputs are unspecified and their output gradient
  // is zero. Real rows' outputs and every gradient must be what the full call gives (the skipped
  // blocks and key windows add nothing to them: masked keys leave the online softmax unchanged and
  // zero output gradients contribute exact zeros), and the float64 reference's.
  const cases: [string, AttentionShape, AttentionMask, number[]][] = [
    ['windowed: 3 key windows, keyStart, a row of one query and a row of none', windowedPrompt, windowedPromptMask, [40, 1, 0]],
    ['windowed: 100 positions in 4 query windows after a 60-key prefix, left padding', shape(2, 100, 160, 9, 3, 64), { keyStart: [0, 20] }, [100, 35]],
    ['windowed: sliding window 20 across windows, kvLength < S', shape(2, 48, 180, 6, 2, 64), { window: 20, keyStart: [0, 150], kvLength: 170 }, [30, 48]],
    ['per-row kernels (few query rows): the option changes nothing there', shape(2, 5, 5, 4, 2, 8), {}, [5, 2]],
  ];
  for (const [title, c, mask, queryLengths] of cases) {
    it(title, async () => {
      const g = gpu();
      const [q, k, v] = inputs({ title, ...c, seed: 51, mask }).map((x) => Float32Array.from(x.data));
      const rowSize = c.qHeads * c.headDim;
      const isReal = (i: number) => Math.floor(i / rowSize) % c.queries < queryLengths[Math.floor(i / (rowSize * c.queries))];
      const gradOut = Float32Array.from(randnInput([c.batch, c.queries, c.qHeads, c.headDim], 52).data, (x, i) => (isReal(i) ? x : 0));
      const run = async (lengths?: number[]) => {
        const [qt, kt, vt] = [g.tensor(q, [c.batch, c.queries, c.qHeads, c.headDim]), g.tensor(k, [c.batch, c.keys, c.kvHeads, c.headDim]), g.tensor(v, [c.batch, c.keys, c.kvHeads, c.headDim])];
        for (const t of [qt, kt, vt]) t.requiresGrad = true;
        const dispatchesBefore = g.commands.dispatchCount;
        const out = g.tidy(() => {
          const o = attention(qt, kt, vt, { ...gpuOptions({ title, ...c, seed: 51, mask }), queryLengths: lengths });
          backward(o, g.tensor(gradOut, o.shape));
          return g.keep(o);
        });
        const dispatches = g.commands.dispatchCount - dispatchesBefore;
        const result = await Promise.all([out, qt.grad!, kt.grad!, vt.grad!].map((t) => t.toArray()));
        for (const t of [out, qt, kt, vt]) t.dispose();
        return { result, dispatches };
      };
      const [{ result: full, dispatches: fullDispatches }, { result: skipped, dispatches }] = [await run(), await run(queryLengths)];
      // The windowed kernels leave out the windows only padding needs; the per-row kernels run whole.
      if (c.queries * (c.qHeads / c.kvHeads) >= 32) expect(dispatches).toBeLessThan(fullDispatches);
      else expect(dispatches).toBe(fullDispatches);
      const realOnly = (t: Float32Array) => t.filter((_, i) => isReal(i));
      expect(realOnly(skipped[0])).toEqual(realOnly(full[0]));
      skipped.slice(1).forEach((grad, i) => expect(grad, ['dq', 'dk', 'dv'][i]).toEqual(full[i + 1]));
      expectClose(realOnly(skipped[0]), realOnly(Float32Array.from(attentionReference(c, q, k, v, mask))), FORWARD_TOL, `${title}: real rows`);
      const ref = attentionBackwardReference(c, q, k, v, gradOut, mask);
      [ref.gradQ, ref.gradK, ref.gradV].forEach((r, i) => expectClose(skipped[i + 1], r, BACKWARD_TOL, `${title}: ${['dq', 'dk', 'dv'][i]}`));
    });
  }

  it('queryLengths must be B whole numbers in [0, T]', () => {
    const g = gpu();
    const [q, k, v] = [g.empty([2, 4, 2, 16]), g.empty([2, 8, 2, 16]), g.empty([2, 8, 2, 16])];
    expect(() => attention(q, k, v, { queryLengths: [4] })).toThrow(/attention: queryLengths must be 2 whole numbers in \[0, T = 4\], got \[4\]/);
    expect(() => attention(q, k, v, { queryLengths: [4, 5] })).toThrow(/got \[4, 5\]/);
    expect(() => attention(q, k, v, { queryLengths: [1.5, 2] })).toThrow(/got \[1.5, 2\]/);
  });
});
