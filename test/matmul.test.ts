import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backward } from '../src/autograd/backward.js';
import type { Tensor } from '../src/gpu/tensor.js';
import { matmul, matmulInto, matmulKBlocksInto } from '../src/ops/matmul.js';
import { contiguousLayout, kRange, swappedLayout } from '../src/ops/matmul-layout.js';
import {
  type BroadcastDispatch,
  broadcastPlanOf,
  chooseMatmulVariant,
  defaultMatmulVariant,
  forceMatmulVariant,
  forgetMatmulTuning,
  MATMUL_VARIANTS,
  matmulVariantChoices,
  recordMatmul,
  restoreMatmulVariantChoices,
  tuneMatmul,
  variantSupported,
  type MatmulVariantName,
} from '../src/ops/matmul-variants.js';
import { expectClose, type Tolerance } from './helpers/check.js';
import type { Gpu } from '../src/gpu/gpu.js';
import { useGpu } from './helpers/gpu.js';
import { randn } from './helpers/random.js';
import { matmulReference, roundToF16 } from './helpers/reference-matmul.js';
import { randnInput, testOp } from './helpers/test-op.js';

const gpu = useGpu();

// Inputs are randn, so each output sums K ≤ 300 products of order 1 in f32: a typical element is
// off the float64 reference by ~sqrt(K)·2⁻²⁴·sqrt(K) ≈ 2e-5, the worst of the 360k elements of
// the large case by 4.9e-5 (all variants). The bound leaves 4× headroom over that worst case.
// f16 operands are compared against a reference built from the f16-rounded values, so they get
// the same bound: what remains is f32 accumulation only (the widening itself is exact).
const TOL: Tolerance = { atol: 2e-4, rtol: 1e-5 };

/** [M, K, N]: degenerate, not multiples of any tile, and with K below and above one chunk. */
const AWKWARD: [number, number, number][] = [
  [1, 1, 1],
  [1, 37, 29],
  [23, 1, 19],
  [17, 33, 65],
  [130, 7, 129],
];
const TRANSPOSES: [boolean, boolean][] = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
];

interface Case {
  aShape: number[];
  bShape: number[];
  transA: boolean;
  transB: boolean;
  aDtype?: 'f32' | 'f16';
  bDtype?: 'f32' | 'f16';
  /** Scale of a's random values (default 1). */
  aScale?: number;
}

/** Stored shapes for logical op(A) [batch…, M, K] · op(B) [batch…, K, N]. */
function stored(m: number, k: number, n: number, transA: boolean, transB: boolean, batchA: number[] = [], batchB: number[] = []) {
  return { aShape: [...batchA, ...(transA ? [k, m] : [m, k])], bShape: [...batchB, ...(transB ? [n, k] : [k, n])] };
}

/** Runs the cases on the GPU (one read-back each, after recording them all) and checks each. */
async function checkCases(cases: Case[], seed: number): Promise<void> {
  const g = gpu();
  const inputs = cases.map((c, i) => {
    const size = (s: number[]) => s.reduce((x, y) => x * y, 1);
    let a = randn(size(c.aShape), seed + 2 * i, c.aScale);
    let b = randn(size(c.bShape), seed + 2 * i + 1);
    if (c.aDtype === 'f16') a = roundToF16(a);
    if (c.bDtype === 'f16') b = roundToF16(b);
    return { a, b };
  });
  const outs = g.tidy(() =>
    cases.map((c, i) => matmul(g.tensor(inputs[i].a, c.aShape, c.aDtype), g.tensor(inputs[i].b, c.bShape, c.bDtype), c)),
  );
  for (const [i, c] of cases.entries()) {
    const expected = matmulReference(inputs[i].a, c.aShape, inputs[i].b, c.bShape, c.transA, c.transB);
    const label = `a ${c.aShape}${c.transA ? 'ᵀ' : ''} ${c.aDtype ?? 'f32'} · b ${c.bShape}${c.transB ? 'ᵀ' : ''} ${c.bDtype ?? 'f32'}`;
    expectClose(await outs[i].toArray(), expected, TOL, label);
    outs[i].dispose();
  }
}

/**
 * matmulInto's alpha and accumulate on a·bᵀ (a [m, k], b [n, k] in bDtype): out = 0.5·a·bᵀ written
 * over other values, and out = start − 2·a·bᵀ + a·bᵀ accumulated, each checked against float64.
 */
async function checkWriteAndAccumulate([m, k, n]: [number, number, number], seed: number, bDtype: 'f32' | 'f16' = 'f32', aScale = 1, transB = true): Promise<void> {
  const g = gpu();
  const a = randn(m * k, seed, aScale);
  const b = bDtype === 'f16' ? roundToF16(randn(n * k, seed + 1)) : randn(n * k, seed + 1);
  const bShape = transB ? [n, k] : [k, n];
  const start = randn(m * n, seed + 2);
  const product = matmulReference(a, [m, k], b, bShape, false, transB);
  const what = `a·b${transB ? 'ᵀ' : ''}`;
  const [written, accumulated] = g.tidy(() => {
    const [ta, tb] = [g.tensor(a, [m, k]), g.tensor(b, bShape, bDtype)];
    const w = g.keep(g.tensor(start, [m, n]));
    const acc = g.keep(g.tensor(start, [m, n]));
    matmulInto(w, ta, tb, { transB, accumulate: false, alpha: 0.5 });
    matmulInto(acc, ta, tb, { transB, accumulate: true, alpha: -2 });
    matmulInto(acc, ta, tb, { transB, accumulate: true });
    return [w, acc];
  });
  expectClose(await written.toArray(), product.map((v) => 0.5 * v), TOL, `out = 0.5·${what} (${bDtype} b)`);
  expectClose(await accumulated.toArray(), product.map((v, i) => start[i] - v), TOL, `out += -2·${what} then += ${what} (${bDtype} b)`);
  written.dispose();
  accumulated.dispose();
}

const supported = (): MatmulVariantName[] => MATMUL_VARIANTS.filter((v) => variantSupported(gpu(), v));

/** A test that reports as skipped (not passed) on an adapter without what it needs. */
const itNeeding = (needs: { variant?: MatmulVariantName; f16?: boolean }, name: string, fn: () => Promise<void> | void) =>
  it(name, async (ctx) => {
    if (needs.variant && !variantSupported(gpu(), needs.variant)) ctx.skip();
    if (needs.f16 && !gpu().hasF16) ctx.skip();
    await fn();
  });

describe.each(MATMUL_VARIANTS)('variant %s', (variant) => {
  beforeAll(() => {
    if (variantSupported(gpu(), variant)) forceMatmulVariant(gpu(), variant);
  });
  afterAll(() => forceMatmulVariant(gpu(), undefined));

  const itIfSupported = (name: string, fn: () => Promise<void>, needsF16 = false) => itNeeding({ variant: variant, f16: needsF16 }, name, fn);

  itIfSupported('matches float64 on awkward shapes with all four transpose combinations', async () => {
    const cases: Case[] = [];
    for (const [m, k, n] of AWKWARD) for (const [transA, transB] of TRANSPOSES) cases.push({ ...stored(m, k, n, transA, transB), transA, transB });
    await checkCases(cases, 100);
  });

  itIfSupported('batches with per-batch operands, a shared b and a shared a', async () => {
    const cases: Case[] = [];
    for (const [transA, transB] of TRANSPOSES) {
      cases.push({ ...stored(9, 13, 11, transA, transB, [2, 3], [2, 3]), transA, transB });
      cases.push({ ...stored(9, 13, 11, transA, transB, [3], []), transA, transB });
      cases.push({ ...stored(9, 13, 11, transA, transB, [], [4]), transA, transB });
    }
    await checkCases(cases, 200);
  });

  itIfSupported('widens f16 operands exactly and accumulates in f32', async () => {
    const cases: Case[] = [];
    for (const [transA, transB] of TRANSPOSES) {
      cases.push({ ...stored(17, 45, 33, transA, transB), transA, transB, bDtype: 'f16' });
      cases.push({ ...stored(17, 45, 33, transA, transB, [2], []), transA, transB, aDtype: 'f16' });
    }
    cases.push({ ...stored(40, 64, 96, false, true, [3], []), transA: false, transB: true, bDtype: 'f16' });
    await checkCases(cases, 300);
  }, true);

  itIfSupported('matches float64 on a long sum (K = 8200, an untransposed b: the rows kernels run it the other way round)', async () => {
    // Inputs scaled so that the sums stay of order 1 like the other cases' (the bound is absolute).
    await checkCases([{ ...stored(21, 8200, 37, false, false), transA: false, transB: false, aScale: 1 / Math.sqrt(8200 / 300) }], 450);
  });

  itIfSupported('matches float64 on a large product (512×300·300×700)', async () => {
    await checkCases([{ ...stored(512, 300, 700, false, false), transA: false, transB: false }], 400);
  });

  itIfSupported('computed the other way round (swappedLayout, Cᵀ written in place) is the same to the bit', async () => {
    const g = gpu();
    const results = g.tidy(() =>
      [...AWKWARD, [70, 45, 33] as [number, number, number]].flatMap(([m, k, n], i) =>
        TRANSPOSES.map(([transA, transB], j) => {
          const { aShape, bShape } = stored(m, k, n, transA, transB);
          const a = g.tensor(randn(m * k, 500 + 8 * i + 2 * j), aShape);
          const b = g.tensor(randn(k * n, 501 + 8 * i + 2 * j), bShape, j % 2 ? 'f16' : 'f32');
          const layout = contiguousLayout(m, k, n, transA, transB);
          const [plain, swapped] = [g.keep(g.empty([m, n])), g.keep(g.tensor(randn(m * n, 7), [m, n]))];
          recordMatmul(variant, plain, a, b, layout, false, 0.75);
          recordMatmul(variant, swapped, b, a, swappedLayout(layout), false, 0.75);
          return { label: `${m}×${k}×${n}, ${transA ? 'aᵀ' : 'a'}·${transB ? 'bᵀ' : 'b'}`, plain, swapped };
        }),
      ),
    );
    for (const { label, plain, swapped } of results) {
      expect(Array.from(await swapped.toArray()), label).toEqual(Array.from(await plain.toArray()));
      plain.dispose();
      swapped.dispose();
    }
  });

  itIfSupported('summed over blocks of K (kRange, accumulating), either way round, matches float64', async () => {
    const g = gpu();
    const [m, k, n] = [37, 300, 45];
    const results = g.tidy(() =>
      TRANSPOSES.flatMap(([transA, transB], j) =>
        [false, true].map((swap) => {
          const { aShape, bShape } = stored(m, k, n, transA, transB);
          const [aValues, bValues] = [randn(m * k, 600 + 2 * j), randn(k * n, 601 + 2 * j)];
          const [a, b] = [g.tensor(aValues, aShape), g.tensor(bValues, bShape)];
          const plain = contiguousLayout(m, k, n, transA, transB);
          const layout = swap ? swappedLayout(plain) : plain;
          const out = g.keep(g.empty([m, n]));
          // Blocks of 64 (a multiple of every load width) and a ragged last one.
          for (let k0 = 0; k0 < k; k0 += 64) recordMatmul(variant, out, swap ? b : a, swap ? a : b, kRange(layout, k0, Math.min(k, k0 + 64)), k0 > 0, 1);
          const expected = matmulReference(aValues, aShape, bValues, bShape, transA, transB);
          return { label: `${transA ? 'aᵀ' : 'a'}·${transB ? 'bᵀ' : 'b'}${swap ? ' swapped' : ''}`, out, expected };
        }),
      ),
    );
    for (const { label, out, expected } of results) {
      expectClose(await out.toArray(), expected, TOL, label);
      out.dispose();
    }
  });

  itIfSupported('writes into and accumulates into an existing tensor with alpha', async () => {
    await checkWriteAndAccumulate([19, 21, 35], 1);
  });
});

describe('skinny variant on decode-shaped x·Wᵀ', () => {
  beforeAll(() => {
    if (variantSupported(gpu(), 'skinny')) forceMatmulVariant(gpu(), 'skinny');
  });
  afterAll(() => forceMatmulVariant(gpu(), undefined));

  const itIfSupported = (name: string, fn: () => Promise<void>, needsF16 = false) => itNeeding({ variant: 'skinny', f16: needsF16 }, name, fn);

  // K = 576 is what the kernel takes (no tail: 144 f32 pieces = 18 shared rounds, 72 f16 pieces =
  // 9); 8, 40 and 584 add tails of unshared pieces (and 8 is a tail only); 1, 3 and 577 are not
  // multiples of one load and run the fallback. x is scaled like a normalised activation
  // (1/√K), so the sums stay O(1) and TOL holds at every K.
  const MS = [1, 2, 5, 8, 17, 32];
  const KS = [1, 3, 8, 40, 576, 577, 584];
  const NS = [1, 7, 1536, 1537];
  const grid = (bDtype: 'f32' | 'f16'): Case[] =>
    MS.flatMap((m) => KS.flatMap((k) => NS.map((n) => ({ ...stored(m, k, n, false, true), transA: false, transB: true, bDtype, aScale: 1 / Math.sqrt(k) }))));

  itIfSupported('matches float64 for M × K × N over awkward sizes, f32 W', async () => {
    await checkCases(grid('f32'), 500);
  });

  itIfSupported('matches float64 for M × K × N over awkward sizes, f16 W', async () => {
    await checkCases(grid('f16'), 600);
  }, true);

  for (const bDtype of ['f32', 'f16'] as const) {
    itIfSupported(`handles a batch folded into rows and per-batch weights, ${bDtype} W`, async () => {
      await checkCases(
        [
          { ...stored(1, 64, 37, false, true, [2, 3], []), transA: false, transB: true, bDtype },
          { ...stored(2, 72, 19, false, true, [3], [3]), transA: false, transB: true, bDtype },
          { ...stored(1, 48, 21, false, true, [], [4]), transA: false, transB: true, bDtype },
        ],
        700,
      );
    }, bDtype === 'f16');
  }

  for (const bDtype of ['f32', 'f16'] as const) {
    itIfSupported(`writes and accumulates with alpha, ${bDtype} W`, async () => {
      const k = 584;
      await checkWriteAndAccumulate([2, k, 37], 11, bDtype, 1 / Math.sqrt(k));
    }, bDtype === 'f16');
  }
});

describe('broadcast variants on x·Wᵀ and g·W (x through uniform windows)', () => {
  // Cases the kernel takes, checked as taken (broadcastPlanOf), so the fallback cannot pass for
  // it: one window and several (K = 576 fits 28 rows in 64 KiB, so 70 rows take 24 + 24 + 22 and
  // 29, one block, 28 + 1; K = 1536 fits 10, so a dispatch reads its rows through up to four
  // windows), row counts that leave part of a block, N not a multiple of a block, and
  // K of one load (8). x is scaled like a normalised activation (1/√K), so TOL holds at every K.
  // W [N, K] is read along K (x·Wᵀ); W [K, N] along N (g·W), which takes N in whole loads of W
  // (4 f32, or 4 halves in 8-byte loads). Both take N of at least one workgroup's columns (8 lanes
  // × 4): 37, 36, 72 and 1544 are not whole blocks of those.
  const MS = [1, 3, 5, 24, 29, 40, 70];
  const KS = [8, 576, 1536];
  const NS = { alongK: [37, 1537], alongN: [36, 72, 1544] };
  const grid = (bDtype: 'f32' | 'f16', transB: boolean): Case[] =>
    MS.flatMap((m) =>
      KS.flatMap((k) => NS[transB ? 'alongK' : 'alongN'].map((n) => ({ ...stored(m, k, n, false, transB), transA: false, transB, bDtype, aScale: 1 / Math.sqrt(k) }))),
    );

  for (const variant of MATMUL_VARIANTS.filter((v) => v.startsWith('bcast'))) {
    describe(variant, () => {
      beforeAll(() => forceMatmulVariant(gpu(), variant));
      afterAll(() => forceMatmulVariant(gpu(), undefined));

      it('takes every case of the grid, in several windows where x exceeds one, and not K = 577, N in part of a load along N or N under a block', () => {
        const g = gpu();
        const windows = (m: number, k: number, n: number, transB: boolean, bDtype: 'f32' | 'f16' = 'f32') =>
          g.tidy(() => broadcastPlanOf(variant, g.zeros([m, k]), g.zeros(transB ? [n, k] : [k, n], bDtype), contiguousLayout(m, k, n, false, transB))?.dispatches ?? null);
        for (const transB of [true, false]) {
          for (const m of MS) {
            for (const k of KS) {
              for (const n of NS[transB ? 'alongK' : 'alongN']) {
                for (const dtype of ['f32', 'f16'] as const) expect(windows(m, k, n, transB, dtype), `${m}×${k}·${n} ${dtype} ${transB ? 'x·Wᵀ' : 'g·W'}`).not.toBeNull();
              }
            }
          }
        }
        const rowsAndWindows = (dispatches: BroadcastDispatch[] | null) => dispatches?.map((d) => [d.rows, d.windows.length]);
        expect(rowsAndWindows(windows(70, 576, 37, true))).toEqual([[24, 1], [24, 1], [22, 1]]);
        // Up to 32 rows are one block (28 + 1 rows through two windows at K = 576); K = 1 536 fits
        // 10 rows in a window, so a block of 24 rows takes three.
        expect(rowsAndWindows(windows(29, 576, 37, true))).toEqual([[29, 2]]);
        expect(rowsAndWindows(windows(29, 1536, 37, true))).toEqual([[29, 3]]);
        expect(rowsAndWindows(windows(29, 1536, 72, false))).toEqual([[29, 3]]);
        expect(rowsAndWindows(windows(40, 1536, 37, true))).toEqual([[30, 3], [10, 1]]);
        // K = 768 fits 21 rows: two windows would make blocks of 42 rows, so only a decode batch takes two.
        expect(rowsAndWindows(windows(70, 768, 37, true))).toEqual([[21, 1], [21, 1], [21, 1], [7, 1]]);
        expect(rowsAndWindows(windows(32, 768, 37, true))).toEqual([[32, 2]]);
        expect(windows(24, 577, 37, true)).toBeNull();
        expect(windows(24, 576, 37, false)).toBeNull();
        expect(windows(24, 576, 34, false, 'f16')).toBeNull();
        // Under one workgroup's columns the rows kernel runs, where it can.
        const narrowTaken = !variantSupported(g, 'rows16x2');
        for (const [n, transB, dtype] of [[31, true, 'f32'], [28, false, 'f16'], [8, false, 'f32']] as const) {
          expect(windows(24, 576, n, transB, dtype) !== null, `N = ${n} ${dtype} ${transB ? 'x·Wᵀ' : 'g·W'}`).toBe(narrowTaken);
        }
      });

      for (const transB of [true, false]) {
        const product = transB ? 'x·Wᵀ' : 'g·W';
        it(`matches float64 over the grid, ${product}, f32 W`, async () => {
          await checkCases(grid('f32', transB), 800);
        });

        it(`matches float64 over the grid, ${product}, f16 W`, async (ctx) => {
          if (!gpu().hasF16) ctx.skip();
          await checkCases(grid('f16', transB), 900);
        });
      }

      // [M, K, N, r, W, accumulate, along N]: one window and several (70 rows at K = 576, 24 at K =
      // 1536), N under and over a block, r of one, two and four vec4 steps; r = 6 is not whole steps.
      // Along K the product is x·Wᵀ + h·Lᵀ (L [N, r]); along N, g·W + h·L (L [r, N], `lRows`).
      type LowRankCase = [number, number, number, number, 'f32' | 'f16', boolean, boolean?];
      const checkLowRank = async (cases: LowRankCase[], seed0: number) => {
        const g = gpu();
        for (const [i, [m, k, n, r, dtype, accumulate, alongN = false]] of cases.entries()) {
          const seed = seed0 + i;
          const transB = !alongN;
          const what = `${m}×${k}·${alongN ? `[${k}×${n}]` : `[${n}×${k}]ᵀ`} ${dtype} W + ${alongN ? 'h·L' : 'h·Lᵀ'}, r ${r}${accumulate ? ', accumulated' : ''}`;
          const x = randn(m * k, seed, 1 / Math.sqrt(k));
          const w = dtype === 'f16' ? roundToF16(randn(n * k, seed + 100)) : randn(n * k, seed + 100);
          const h = randn(m * r, seed + 200);
          const l = randn(n * r, seed + 300);
          const start = randn(m * n, seed + 400);
          const [alpha, scale] = [1.5, 0.75];
          const [wShape, lShape] = alongN ? [[k, n], [r, n]] : [[n, k], [n, r]];
          const [carried, inTurn, dispatches, windows] = g.tidy(() => {
            const [tx, tw, th, tl] = [g.tensor(x, [m, k]), g.tensor(w, wShape, dtype), g.tensor(h, [m, r]), g.tensor(l, lShape)];
            const [one, two] = [g.keep(g.tensor(start, [m, n])), g.keep(g.tensor(start, [m, n]))];
            const before = g.commands.dispatchCount;
            matmulInto(one, tx, tw, { transB, accumulate, alpha, plusLowRank: { h: th, l: tl, scale, lRows: alongN } });
            const recorded = g.commands.dispatchCount - before;
            matmulInto(two, tx, tw, { transB, accumulate, alpha });
            matmulInto(two, th, tl, { transB, accumulate: true, alpha: scale });
            return [one, two, recorded, broadcastPlanOf(variant, tx, tw, contiguousLayout(m, k, n, false, transB))?.dispatches.length];
          });
          const [a, b] = [await carried.toArray(), await inTurn.toArray()];
          expect(Array.from(new Uint32Array(a.buffer)), what).toEqual(Array.from(new Uint32Array(b.buffer)));
          const base = matmulReference(x, [m, k], w, wShape, false, transB);
          const term = matmulReference(h, [m, r], l, lShape, false, transB);
          expectClose(a, base.map((v, i) => (accumulate ? start[i] : 0) + alpha * v + scale * term[i]), TOL, what);
          expect(windows, what).toBeGreaterThan(0);
          expect(dispatches, `${what}: dispatches`).toBe(r % 4 === 0 ? windows : windows! + 1);
          carried.dispose();
          inTurn.dispose();
        }
      };

      it('carries a low-rank term in the product’s dispatches, bit for bit the two products in turn, and leaves what it cannot take to a second product', async () => {
        await checkLowRank([[1, 576, 37, 8, 'f32', false], [70, 576, 72, 16, 'f32', true], [24, 1536, 37, 4, 'f32', false], [5, 8, 37, 8, 'f32', true], [29, 576, 37, 6, 'f32', false]], 60);
      });

      it('carries a low-rank term on an f16 W', async (ctx) => {
        if (!gpu().hasF16) ctx.skip();
        await checkLowRank([[29, 576, 1537, 8, 'f16', true]], 70);
      });

      it('carries a low-rank term along N (g·W + h·L, L [r, N]) the same way, f32 and f16 W', async (ctx) => {
        await checkLowRank([[1, 576, 72, 8, 'f32', false, true], [70, 576, 72, 16, 'f32', true, true], [24, 1536, 1544, 4, 'f32', false, true], [29, 576, 72, 6, 'f32', false, true]], 80);
        if (!gpu().hasF16) ctx.skip();
        await checkLowRank([[29, 576, 1544, 8, 'f16', true, true], [40, 1536, 72, 8, 'f16', false, true]], 90);
      });

      it('gives a last, partial window that a full window’s binding would take past x’s buffer a dispatch of its own', async () => {
        // x is rows 39–63 of a 64 × 2048 tensor, whose buffer is exactly its 512 KiB (no larger cached
        // buffer is reused). K = 2048 fits 8 rows in a window, so the 25 rows' block takes windows from
        // rows 39, 47, 55 and 63; bound at 64 KiB the last would end 56 KiB past the buffer.
        const g = gpu();
        const [total, rows, k, n] = [64, 25, 2048, 37];
        const skip = total - rows;
        const x = randn(total * k, 33, 1 / Math.sqrt(k));
        const w = randn(n * k, 34);
        const slack = g.pool.reuseSlack;
        g.pool.reuseSlack = 0;
        try {
          const product = g.tidy(() => {
            const [tx, tw] = [g.tensor(x, [total, k]), g.tensor(w, [n, k])];
            expect(tx.buffer.size).toBe(total * k * 4);
            const layout = { ...contiguousLayout(rows, k, n, false, true), aOffset: skip * k };
            const plan = broadcastPlanOf(variant, tx, tw, layout);
            expect(plan?.dispatches.map((d) => [d.row0, d.rows, d.windows.length])).toEqual([[0, 24, 3], [24, 1, 1]]);
            const out = g.keep(g.empty([rows, n]));
            recordMatmul(variant, out, tx, tw, layout, false, 1);
            return out;
          });
          expectClose(await product.toArray(), matmulReference(x.slice(skip * k), [rows, k], w, [n, k], false, true), TOL, `${rows}×${k}·[${n}×${k}]ᵀ at the end of x's buffer`);
          product.dispose();
        } finally {
          g.pool.reuseSlack = slack;
        }
      });

      it('binds a last window whose power-of-two binding would pass x’s buffer back from the buffer’s end', async () => {
        // 256 rows of K = 1 536 in a buffer of exactly 1.5 MiB: windows of 10 rows (61 440 bytes, bound
        // at 64 KiB); the last 6 rows span 36 KiB, bound at 64 KiB from row 250 they would end 28 KiB
        // past the buffer. Both orientations (x·Wᵀ and the backward's g·W, gate's dX), writing and
        // accumulating.
        const g = gpu();
        const [m, k, n] = [256, 1536, 40];
        const x = randn(m * k, 35, 1 / Math.sqrt(k));
        const w = randn(n * k, 36);
        const start = randn(m * n, 37);
        const slack = g.pool.reuseSlack;
        g.pool.reuseSlack = 0;
        try {
          for (const transB of [true, false]) {
            const [product, accumulated] = g.tidy(() => {
              const [tx, tw] = [g.tensor(x, [m, k]), g.tensor(w, transB ? [n, k] : [k, n])];
              expect(tx.buffer.size).toBe(m * k * 4);
              const layout = contiguousLayout(m, k, n, false, transB);
              const plan = broadcastPlanOf(variant, tx, tw, layout);
              const last = plan?.dispatches[plan.dispatches.length - 1];
              expect(last && [last.row0, last.rows, last.windows.length, last.windows[0].shift]).toEqual([250, 6, 1, (250 * k * 4 - (m * k * 4 - 65536)) / 16]);
              const out = g.keep(g.empty([m, n]));
              recordMatmul(variant, out, tx, tw, layout, false, 1);
              const sum = g.keep(g.tensor(start, [m, n]));
              recordMatmul(variant, sum, tx, tw, layout, true, 0.5);
              return [out, sum];
            });
            const reference = matmulReference(x, [m, k], w, transB ? [n, k] : [k, n], false, transB);
            expectClose(await product.toArray(), reference, TOL, `${m}×${k} x, W ${transB ? 'along K' : 'along N'}`);
            expectClose(await accumulated.toArray(), reference.map((v, i) => start[i] + 0.5 * v), TOL, `${m}×${k} x, W ${transB ? 'along K' : 'along N'}, accumulated`);
            product.dispose();
            accumulated.dispose();
          }
        } finally {
          g.pool.reuseSlack = slack;
        }
      });

      it('writes and accumulates with alpha, and sums over blocks of K, across windows', async () => {
        const g = gpu();
        const [m, k, n] = [29, 576, 37];
        await checkWriteAndAccumulate([m, k, n], 21, 'f32', 1 / Math.sqrt(k));
        await checkWriteAndAccumulate([m, k, 72], 22, 'f32', 1 / Math.sqrt(k), false);
        const a = randn(m * k, 24, 1 / Math.sqrt(k));
        const b = randn(n * k, 25);
        const blocked = g.tidy(() => {
          const [ta, tb] = [g.tensor(a, [m, k]), g.tensor(b, [n, k])];
          const blocks = g.keep(g.empty([m, n]));
          const layout = contiguousLayout(m, k, n, false, true);
          expect(broadcastPlanOf(variant, ta, tb, kRange(layout, 64, 128))).not.toBeNull();
          for (let k0 = 0; k0 < k; k0 += 64) recordMatmul(variant, blocks, ta, tb, kRange(layout, k0, Math.min(k, k0 + 64)), k0 > 0, 1);
          return blocks;
        });
        expectClose(await blocked.toArray(), matmulReference(a, [m, k], b, [n, k], false, true), TOL, 'summed over K in blocks of 64');
        blocked.dispose();
      });
    });
  }
});

describe('matmulKBlocksInto: A stored in blocks of columns', () => {
  // a [m, K] stored block after block ([m, width] each, the last narrower), as the LM head's dlogits.
  const blockedCopy = (a: Float32Array, m: number, k: number, width: number): Float32Array => {
    const out = new Float32Array(m * k);
    for (let start = 0; start < k; start += width) {
      const w = Math.min(width, k - start);
      for (let r = 0; r < m; r++) out.set(a.subarray(r * k + start, r * k + start + w), start * m + r * w);
    }
    return out;
  };
  const [m, k, n, width] = [40, 1000, 72, 256];

  for (const variant of ['bcast24x4', 'rows16x2'] as const) {
    itNeeding({ variant }, `${variant}: equals a·op(b) in float64, written and accumulated, for b [K, N] and [N, K]`, async () => {
      const g = gpu();
      forceMatmulVariant(g, variant);
      try {
        for (const transB of [false, true]) {
          const a = randn(m * k, 41, 1 / Math.sqrt(k));
          const b = randn(n * k, 42);
          const start = randn(m * n, 43);
          const bShape = transB ? [n, k] : [k, n];
          const product = matmulReference(a, [m, k], b, bShape, false, transB);
          const [written, accumulated] = g.tidy(() => {
            const [ta, tb] = [g.tensor(blockedCopy(a, m, k, width), [m, k]), g.tensor(b, bShape)];
            const w = g.keep(g.tensor(start, [m, n]));
            const acc = g.keep(g.tensor(start, [m, n]));
            matmulKBlocksInto(w, ta, tb, width, { transB, accumulate: false, alpha: 0.5 });
            matmulKBlocksInto(acc, ta, tb, width, { transB, accumulate: true });
            if (variant === 'bcast24x4' && !transB) {
              // The broadcast kernel takes every block (the fallback could not pass for it).
              const block = (from: number, to: number) => ({ ...kRange(contiguousLayout(m, k, n, false, false), from, to), aRowStride: to - from, aOffset: from * m });
              expect(broadcastPlanOf(variant, ta, tb, block(0, width))).not.toBeNull();
              expect(broadcastPlanOf(variant, ta, tb, block(768, k))).not.toBeNull();
            }
            return [w, acc];
          });
          expectClose(await written.toArray(), product.map((v) => 0.5 * v), TOL, `0.5·a·b${transB ? 'ᵀ' : ''}`);
          expectClose(await accumulated.toArray(), product.map((v, i) => start[i] + v), TOL, `start + a·b${transB ? 'ᵀ' : ''}`);
          written.dispose();
          accumulated.dispose();
        }
      } finally {
        forceMatmulVariant(g, undefined);
      }
    });
  }

  it('refuses a bad block width and operands that are not 2-D, by name', () => {
    const g = gpu();
    g.tidy(() => {
      expect(() => matmulKBlocksInto(g.empty([2, 3]), g.empty([2, 4]), g.empty([4, 3]), 0, { accumulate: false })).toThrow(/matmulKBlocksInto: blockWidth must be a positive integer, got 0/);
      expect(() => matmulKBlocksInto(g.empty([2, 3]), g.empty([1, 2, 4]), g.empty([4, 3]), 2, { accumulate: false })).toThrow(/matmulKBlocksInto: needs 2-D operands/);
      expect(() => matmulKBlocksInto(g.empty([2, 2]), g.empty([2, 4]), g.empty([4, 3]), 2, { accumulate: false })).toThrow(/matmulKBlocksInto: out \[2, 2\] f32 cannot hold/);
    });
  });
});

describe('gradients', () => {
  interface GradientCase extends Case {
    transA: boolean;
    transB: boolean;
    title: string;
    seed: number;
  }
  const cases = (title: string, m: number, k: number, n: number, batchA: number[], batchB: number[], seed: number): GradientCase[] =>
    TRANSPOSES.map(([transA, transB], i) => ({ ...stored(m, k, n, transA, transB, batchA, batchB), transA, transB, title, seed: seed + i }));
  testOp(
    'matmul',
    ([a, b], c) => matmul(a, b, c),
    ([a, b], c) => matmulReference(a, c.aShape, b, c.bShape, c.transA, c.transB),
    [],
    {
      gpu,
      inputs: (c) => [randnInput(c.aShape, c.seed), randnInput(c.bShape, c.seed + 10)],
      tol: TOL,
      label: (c) => `${c.title}, a ${c.aShape}${c.transA ? 'ᵀ' : ''} · b ${c.bShape}${c.transB ? 'ᵀ' : ''}`,
      gradient: {
        cases: [
          ...cases('every transpose combination', 5, 7, 6, [], [], 10),
          ...cases('b shared across a batch (its gradient sums over the batch)', 4, 6, 5, [3], [], 30),
          ...cases('a shared across a batch', 4, 6, 5, [], [2], 50),
          ...cases('per-batch operands', 3, 4, 5, [2], [2], 70),
        ],
      },
    },
  );

  itNeeding({ f16: true }, 'gives a gradient to the f32 operand only when the other is frozen f16', async () => {
    const g = gpu();
    const [m, k, n] = [6, 9, 7];
    const x = randn(m * k, 90);
    const w = roundToF16(randn(n * k, 91));
    const seed = randn(m * n, 92);
    const grad = g.tidy(() => {
      const tx = g.tensor(x, [m, k]);
      tx.requiresGrad = true;
      const y = matmul(tx, g.tensor(w, [n, k], 'f16'), { transB: true });
      backward(y, g.tensor(seed, [m, n]));
      return tx.grad!;
    });
    // dX = dY · W for y = x·Wᵀ
    expectClose(await grad.toArray(), matmulReference(seed, [m, n], w, [n, k]), TOL, 'dX');
    grad.dispose();
  });
});

describe('errors', () => {
  const t = (shape: number[], dtype: 'f32' | 'f16' | 'u32' = 'f32'): Tensor => gpu().tensor(new Float32Array(shape.reduce((x, y) => x * y, 1)), shape, dtype);

  it('names the op and both shapes', () => {
    gpu().tidy(() => {
      expect(() => matmul(t([2, 3]), t([4, 5]))).toThrow(/matmul: inner dimensions differ for a \[2, 3\] f32 and b \[4, 5\] f32/);
      expect(() => matmul(t([2, 3]), t([5, 3]))).toThrow(/a \[2, 3\].*b \[5, 3\]/);
      expect(() => matmul(t([3, 2]), t([3, 5]), { transA: true, transB: true })).toThrow(/a \[3, 2\] f32 \(transposed\) and b \[3, 5\] f32 \(transposed\)/);
      expect(() => matmul(t([2, 2, 3]), t([3, 3, 4]))).toThrow(/matmul: batch dims differ for a \[2, 2, 3\].*b \[3, 3, 4\]/);
      expect(() => matmul(t([3]), t([3, 4]))).toThrow(/matmul: operands need at least 2 dims, got a \[3\]/);
      expect(() => matmul(t([2, 3], 'u32'), t([3, 4]))).toThrow(/matmul: needs f32 or f16 operands, got a \[2, 3\] u32/);
      expect(() => matmulInto(t([2, 5]), t([2, 3]), t([3, 4]), { accumulate: true })).toThrow(
        /matmulInto: out \[2, 5\] f32 cannot hold the f32 \[2, 4\] product of a \[2, 3\] f32 and b \[3, 4\] f32/,
      );
      const a = t([2, 2]);
      expect(() => matmulInto(a, a, t([2, 2]), { accumulate: false })).toThrow(/matmulInto: out \[2, 2\] shares storage/);
      const [x, w, out] = [t([2, 3]), t([4, 3]), t([2, 4])];
      const intoWith = (h: Tensor, l: Tensor) => () => matmulInto(out, x, w, { transB: true, accumulate: false, plusLowRank: { h, l, scale: 1 } });
      expect(intoWith(t([2, 8]), t([4, 4]))).toThrow(/matmulInto: a low-rank term h \[2, 8\] f32, L \[4, 4\] f32 does not make an f32 \[2, 4\] h·Lᵀ/);
      expect(intoWith(t([3, 8]), t([4, 8]))).toThrow(/low-rank term h \[3, 8\]/);
      expect(intoWith(t([2, 8]), t([4, 8], 'u32'))).toThrow(/L \[4, 8\] u32 does not make/);
      expect(intoWith(out, t([4, 4]))).toThrow(/matmulInto: out \[2, 4\] shares storage/);
      // With lRows, L is [r, N]: an [N, r] L is refused, naming the h·L it does not make.
      expect(() => matmulInto(out, x, w, { transB: true, accumulate: false, plusLowRank: { h: t([2, 8]), l: t([4, 8]), scale: 1, lRows: true } })).toThrow(
        /matmulInto: a low-rank term h \[2, 8\] f32, L \[4, 8\] f32 does not make an f32 \[2, 4\] h·L$/,
      );
    });
  });

  itNeeding({ f16: true }, 'refuses gradients for f16 operands', () => {
    gpu().tidy(() => {
      const w = t([4, 3], 'f16');
      w.requiresGrad = true;
      expect(() => matmul(t([2, 3]), w, { transB: true })).toThrow(/matmul: f16 operands are frozen and cannot require grad: a \[2, 3\] f32 and b \[4, 3\] f16/);
    });
  });
});

describe('variant choice', () => {
  afterAll(() => forgetMatmulTuning());

  it('defaults to bcast24x4 for every row count on CPU adapters with subgroups, and computes the same', async (ctx) => {
    const g = gpu();
    if (!g.isCpuAdapter || !variantSupported(g, 'rows16x2')) ctx.skip();
    for (const m of [1, 2, 32, 33, 300]) expect(defaultMatmulVariant(g, m), `${m} rows`).toBe('bcast24x4');
    // The same adapter without subgroups (as SwiftShader, the page's): many rows stay on the shared tiles.
    const noSubgroups: Gpu = Object.create(g, { features: { value: new Set([...g.features].filter((f) => f !== 'subgroups')) } });
    expect(defaultMatmulVariant(noSubgroups, 32)).toBe('bcast24x4');
    expect(defaultMatmulVariant(noSubgroups, 33)).toBe('tiled64');
    // Unforced: whatever chooseMatmulVariant picks for a decode step gives the right numbers.
    await checkCases([{ ...stored(1, 576, 1537, false, true), transA: false, transB: true, aScale: 1 / 24 }], 800);
  });

  itNeeding({ f16: true }, 'computes the same for a decode step against an f16 W, unforced', async () => {
    await checkCases([{ ...stored(1, 576, 1537, false, true), transA: false, transB: true, bDtype: 'f16', aScale: 1 / 24 }], 801);
  });

  it('uses the tuned winner unless a variant is forced', async () => {
    const g = gpu();
    const candidates = supported().slice(0, 2);
    const results = await tuneMatmul(g, { force: true, reps: 1, candidates, persist: false });
    expect(results.map((r) => r.shapeClass).sort()).toEqual(['batch-rows', 'few-rows', 'many-rows', 'one-row']);
    for (const r of results) {
      expect(candidates).toContain(r.winner);
      expect(Object.keys(r.timings).sort()).toEqual([...candidates].sort());
      for (const ms of Object.values(r.timings)) expect(ms).toBeGreaterThan(0);
    }
    for (const [cls, m] of [['one-row', 1], ['few-rows', 8], ['batch-rows', 24], ['many-rows', 256]] as const) {
      expect(chooseMatmulVariant(g, m)).toBe(results.find((r) => r.shapeClass === cls)!.winner);
    }
    forceMatmulVariant(g, 'tiled32');
    expect(chooseMatmulVariant(g, 256)).toBe('tiled32');
    forceMatmulVariant(g, undefined);
  });

  it('restores recorded choices, and gives 17–32 rows the many-rows variant of choices recorded before that class existed', () => {
    const g = gpu();
    restoreMatmulVariantChoices(g, { 'one-row': 'rows4x4', 'few-rows': 'rows8x4', 'many-rows': 'tiled32' });
    expect([1, 8, 24, 256].map((m) => chooseMatmulVariant(g, m))).toEqual(['rows4x4', 'rows8x4', 'tiled32', 'tiled32']);
    restoreMatmulVariantChoices(g, { 'one-row': 'skinny', 'few-rows': 'rows8x4', 'batch-rows': 'bcast24x4', 'many-rows': 'tiled32' });
    expect([1, 8, 24, 256].map((m) => chooseMatmulVariant(g, m))).toEqual(['skinny', 'rows8x4', 'bcast24x4', 'tiled32']);
    expect(matmulVariantChoices(g)).toEqual({ 'one-row': 'skinny', 'few-rows': 'rows8x4', 'batch-rows': 'bcast24x4', 'many-rows': 'tiled32' });
    forgetMatmulTuning();
  });
});
