import { describe, expect, it } from 'vitest';
import { backward } from '../src/autograd/backward.js';
import { embedding } from '../src/ops/embedding.js';
import { expectClose } from './helpers/check.js';
import { useGpu } from './helpers/gpu.js';
import { randn, rng } from './helpers/random.js';
import { numelOf } from './helpers/reference-rows.js';
import { testOp } from './helpers/test-op.js';

const gpu = useGpu();

function randomIds(n: number, vocab: number, seed: number): Uint32Array {
  const u = rng(seed);
  return Uint32Array.from({ length: n }, () => Math.floor(u() * vocab));
}

function gatherRef(ids: ArrayLike<number>, table: ArrayLike<number>, dim: number): number[] {
  return Array.from(ids).flatMap((id) => Array.from({ length: dim }, (_, c) => table[id * dim + c]));
}

function scatterAddRef(ids: ArrayLike<number>, g: ArrayLike<number>, vocab: number, dim: number): Float64Array {
  const out = new Float64Array(vocab * dim);
  Array.from(ids).forEach((id, n) => {
    for (let c = 0; c < dim; c++) out[id * dim + c] += g[n * dim + c];
  });
  return out;
}

// [ids shape, vocab, dim]
const cases: [number[], number, number][] = [
  [[1], 1, 1],
  [[7], 13, 5],
  [[3, 5], 257, 11],
  [[4, 1000], 50, 64],
  [[2, 300], 49152, 8],
];

describe('embedding', () => {
  type Case = (typeof cases)[number];
  const gather = (tableDtype: 'f32' | 'f16') => ({
    gpu,
    inputs: ([idsShape, vocab, dim]: Case) => [
      { data: randomIds(numelOf(idsShape), vocab, vocab + dim), shape: idsShape, dtype: 'u32' as const },
      { data: randn(vocab * dim, 51), shape: [vocab, dim], dtype: tableDtype },
    ],
    // A gather copies values; widening f16 to f32 is exact.
    tol: 'exact' as const,
    outShape: ([idsShape, , dim]: Case) => [...idsShape, dim],
    label: ([idsShape, vocab, dim]: Case) => `ids ${JSON.stringify(idsShape)}, ${tableDtype} table [${vocab}, ${dim}]`,
  });
  const reference = ([ids, table]: readonly Float64Array[], [, , dim]: Case) => gatherRef(ids, table, dim);
  testOp('embedding', ([ids, table]) => embedding(ids, table), reference, cases, { ...gather('f32'), gradient: { cases: cases.slice(0, 3) } });
  testOp('embedding', ([ids, table]) => embedding(ids, table), reference, cases, gather('f16'));

  it('reads an out-of-range id as a zero row (rows of 2, and of 4 copied as one vec4)', async () => {
    const y = embedding(gpu().tensor([1, 3, 0], [3], 'u32'), gpu().tensor([1, 2, 3, 4, 5, 6], [3, 2]));
    expect(Array.from(await y.toArray())).toEqual([3, 4, 0, 0, 1, 2]);
    const wide = embedding(gpu().tensor([1, 3, 0], [3], 'u32'), gpu().tensor([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [3, 4]));
    expect(Array.from(await wide.toArray())).toEqual([5, 6, 7, 8, 0, 0, 0, 0, 1, 2, 3, 4]);
  });

  for (const [dtype, dim] of [['f32', 7], ['f32', 8], ['f16', 7]] as const) {
    it(`blocks of rows read as the whole table (${dtype}, rows of ${dim}), ids past the last block as zero rows`, async (ctx) => {
      const g = gpu();
      if (dtype === 'f16' && !g.hasF16) ctx.skip();
      const vocab = 301;
      const table = randn(vocab * dim, 64);
      const ids = g.tensor([...randomIds(500, vocab, 65), vocab, vocab + 100, 0, vocab - 1], [4, 126], 'u32');
      const whole = await embedding(ids, g.tensor(table, [vocab, dim], dtype)).toArray();
      const blocks = [[0, 100], [100, 101], [101, 250], [250, vocab]].map(([start, end]) => g.tensor(table.subarray(start * dim, end * dim), [end - start, dim], dtype));
      expect(await embedding(ids, blocks).toArray()).toEqual(whole);
      expect(Array.from(whole.subarray(500 * dim, 502 * dim)).every((v) => v === 0)).toBe(true);
      const trained = g.tensor(table.subarray(0, 3 * dim), [3, dim]);
      trained.requiresGrad = true;
      expect(() => embedding(ids, [blocks[0], trained])).toThrow(new RegExp(`embedding: blocks of a table must be frozen \\[rows, ${dim}\\], got Tensor#\\d+\\(\\[3, ${dim}\\], f32\\) requiring grad`));
    });
  }

  // [positions, vocab, dim]: many repeats of few ids, then a vocabulary-sized table.
  for (const [n, vocab, dim] of [[5000, 37, 19], [600, 49152, 4]]) {
    it(`scatter-adds the gradient deterministically for ${n} ids into a [${vocab}, ${dim}] table`, async () => {
      const ids = randomIds(n, vocab - 2, 61); // the last two rows never occur and get zeros
      ids[n - 1] = vocab + 4; // out of range: contributes nothing
      const g = randn(n * dim, 62);
      const runOnce = async () => {
        const table = gpu().tensor(randn(vocab * dim, 63), [vocab, dim]);
        table.requiresGrad = true;
        gpu().tidy(() => backward(embedding(gpu().tensor(ids, [n], 'u32'), table), gpu().tensor(g, [n, dim])));
        const grad = await table.grad!.toArray();
        table.grad!.dispose();
        table.dispose();
        return grad;
      };
      const first = await runOnce();
      // An element sums up to ~140 gradient values in f32 (Σ|g| ≈ 110): 1e-4 ≈ 2^-20 · Σ|g|, as for sums.
      expectClose(first, scatterAddRef(ids.slice(0, n - 1), g, vocab, dim), { atol: 1e-4, rtol: 1e-5 }, 'table gradient');
      expect(first.slice((vocab - 2) * dim).every((v) => v === 0)).toBe(true);
      expect(Array.from(await runOnce())).toEqual(Array.from(first));
    });
  }

  it('names the op and shapes for bad inputs', () => {
    const ids = gpu().tensor([0, 1], [2], 'u32');
    expect(() => embedding(gpu().empty([2]), gpu().empty([4, 3]))).toThrow('embedding: ids must be u32, got f32 [2]');
    expect(() => embedding(ids, gpu().empty([12]))).toThrow('embedding: table must be [vocab, dim], got [12]');
    expect(() => embedding(ids, gpu().empty([4, 3], 'u32'))).toThrow('embedding: table must be f32 or f16, got u32 [4, 3]');
    const frozen = gpu().empty([4, 3], 'f16');
    frozen.requiresGrad = true;
    expect(() => embedding(ids, frozen)).toThrow('embedding: an f16 table [4, 3] is frozen and cannot require grad');
  });
});
