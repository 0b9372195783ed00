import { describe, expect, it } from 'vitest';
import { accumulate } from '../src/autograd/accumulate.js';
import { backward } from '../src/autograd/backward.js';
import { noGrad } from '../src/autograd/grad-node.js';
import { sizeClass } from '../src/gpu/buffer-pool.js';
import { add, div, mul, scale, sub, sumToShape } from '../src/ops/binary.js';
import { useGpu } from './helpers/gpu.js';
import { randn, uniform } from './helpers/random.js';
import { randnInput, testOp } from './helpers/test-op.js';

const gpu = useGpu();

/** float64 broadcasting reference over row-major arrays. */
/** The two shapes padded with leading 1s to one rank, and the shape they broadcast to. */
function broadcastShapes(as: number[], bs: number[]) {
  const rank = Math.max(as.length, bs.length);
  const pa = [...Array(rank - as.length).fill(1), ...as];
  const pb = [...Array(rank - bs.length).fill(1), ...bs];
  return { rank, pa, pb, shape: pa.map((d, i) => Math.max(d, pb[i])) };
}

function broadcastRef(a: ArrayLike<number>, as: number[], b: ArrayLike<number>, bs: number[], f: (x: number, y: number) => number): Float64Array {
  const { rank, pa, pb, shape } = broadcastShapes(as, bs);
  const n = shape.reduce((x, y) => x * y, 1);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let rest = i;
    let ia = 0;
    let ib = 0;
    let sa = 1;
    let sb = 1;
    for (let d = rank - 1; d >= 0; d--) {
      const idx = rest % shape[d];
      rest = Math.floor(rest / shape[d]);
      ia += (pa[d] === 1 ? 0 : idx) * sa;
      ib += (pb[d] === 1 ? 0 : idx) * sb;
      sa *= pa[d];
      sb *= pb[d];
    }
    out[i] = f(a[ia], b[ib]);
  }
  return out;
}

describe('tensors and memory', () => {
  it('round-trips f32 and u32 data, including odd lengths and empty tensors', async () => {
    const data = randn(37, 1);
    expect(Array.from(await gpu().tensor(data, [37]).toArray())).toEqual(Array.from(data));
    expect(Array.from(await gpu().readU32(gpu().tensor([0, 7, 49151, 4294967295], [4], 'u32')))).toEqual([0, 7, 49151, 4294967295]);
    expect(() => gpu().tensor([1.5], [1], 'u32')).toThrow(/1.5 is not a u32/);
    expect((await gpu().zeros([3, 3]).toArray()).every((v) => v === 0)).toBe(true);
    expect((await gpu().empty([0, 4]).toArray()).length).toBe(0);
  });

  it('round-trips f16 data', async (ctx) => {
    if (!gpu().hasF16) ctx.skip();
    const half = await gpu().tensor([1, -2.5, 65504, 1e-7, 0.1], [5], 'f16').toArray();
    expect(Array.from(half)).toEqual([1, -2.5, 65504, 1.1920928955078125e-7, 0.0999755859375]);
  });

  it('rejects data that does not fill the shape', () => {
    expect(() => gpu().tensor([1, 2, 3], [2, 2])).toThrow(/3 values do not fill shape \[2, 2\]/);
  });

  it('reuses pooled buffers instead of allocating new ones', () => {
    const g = gpu();
    g.tidy(() => void g.empty([1000]));
    const before = g.pool.allocatedBytes;
    for (let i = 0; i < 10; i++) g.tidy(() => void add(g.empty([1000]), g.empty([1000])));
    expect(g.pool.allocatedBytes).toBe(before + sizeClass(4000) * 2);
    expect(sizeClass(3 << 20)).toBe(3 << 20);
    expect(sizeClass(1000)).toBe(1024);
  });

  it('tidy disposes temporaries and keeps what is returned', async () => {
    const g = gpu();
    const live = g.pool.liveBytes;
    let temp = g.empty([1]);
    const kept = g.tidy(() => {
      temp = g.tensor([1, 2], [2]);
      return add(temp, temp);
    });
    expect(temp.disposed).toBe(true);
    expect(Array.from(await kept.toArray())).toEqual([2, 4]);
    kept.dispose();
    expect(g.pool.liveBytes).toBe(live + sizeClass(4));
    expect(() => temp.buffer).toThrow(/used after dispose/);
  });

  it('reports a WGSL compile error with the shader file and line', async () => {
    const g = gpu();
    g.kernel('accumulate', { WG: 'not_a_number' });
    await expect(g.sync()).rejects.toThrow(/WGSL compile error in shader 'accumulate.*shaders\/accumulate\.wgsl:\d+:\d+/s);
  });
});

describe('command batch', () => {
  it('reuses a bind group for the same buffers in the same params slot, with that dispatch’s own params', async () => {
    const g = gpu();
    const a = g.tensor([1, 2, 3, 4], [4]);
    const b = g.tensor([10, 20, 30, 40], [4]);
    await g.sync();
    const hits = () => g.commands.bindGroupHits;
    const before = hits();
    const doubled = scale(a, 2);
    expect(Array.from(await doubled.toArray())).toEqual([2, 4, 6, 8]);
    const outputBuffer = doubled.buffer;
    doubled.dispose();
    // The pool hands the released buffer back and the read-back started a new batch at slot 0.
    const tripled = scale(a, 3);
    expect(tripled.buffer).toBe(outputBuffer);
    expect(Array.from(await tripled.toArray())).toEqual([3, 6, 9, 12]);
    expect(hits()).toBe(before + 1);
    tripled.dispose();
    // Another input buffer is another bind group.
    const other = scale(b, 3);
    expect(Array.from(await other.toArray())).toEqual([30, 60, 90, 120]);
    expect(hits()).toBe(before + 1);
    other.dispose();
    // Without reuse the same dispatch creates its group anew.
    g.commands.reuseBindGroups = false;
    try {
      const again = scale(b, 4);
      expect(Array.from(await again.toArray())).toEqual([40, 80, 120, 160]);
      expect(hits()).toBe(before + 1);
    } finally {
      g.commands.reuseBindGroups = true;
    }
  });
});

describe('binary ops', () => {
  const cases: [number[], number[]][] = [
    [[1], [1]],
    [[37], [37]],
    [[3, 2, 8], [3, 2, 8]],
    [[5, 7], [7]],
    [[3, 1, 5], [1, 4, 1]],
    [[2, 3, 4, 5], [3, 1, 5]],
    [[257, 3], [257, 1]],
  ];
  const refs = { add: (x: number, y: number) => x + y, sub: (x: number, y: number) => x - y, mul: (x: number, y: number) => x * y, div: (x: number, y: number) => x / y };
  const ops = { add, sub, mul, div };

  for (const name of ['add', 'sub', 'mul', 'div'] as const) {
    testOp(name, ([a, b]) => ops[name](a, b), ([a, b], [as, bs]) => broadcastRef(a, as, b, bs, refs[name]), cases, {
      gpu,
      // b stays in [0.5, 2], away from div's pole.
      inputs: ([as, bs]) => [randnInput(as, 2), { data: uniform(bs.reduce((x, y) => x * y, 1), 3, 0.5, 2), shape: bs }],
      tol: { atol: 1e-6, rtol: 1e-6 },
      outShape: ([as, bs]) => broadcastShapes(as, bs).shape,
      label: ([as, bs]) => `${JSON.stringify(as)} ∘ ${JSON.stringify(bs)}`,
      gradient: { cases: cases.slice(1, 6) },
    });
  }

  it('handle a launch larger than one grid dimension', async () => {
    const n = 65535 * 256 + 1001;
    const x = uniform(n, 4);
    const y = await scale(gpu().tensor(x, [n]), 3).toArray();
    expect(y[n - 1]).toBe(Math.fround(3 * x[n - 1]));
    expect(y[12345678]).toBe(Math.fround(3 * x[12345678]));
  });

  it('name the op and both shapes when shapes do not broadcast', () => {
    expect(() => add(gpu().empty([2, 3]), gpu().empty([4]))).toThrow('add: shapes [2, 3] and [4] do not broadcast');
    expect(() => sumToShape(gpu().empty([2, 3]), [4])).toThrow(/sumToShape: .*\[4\].*\[2, 3\]/);
  });

});

describe('autograd', () => {
  it('accumulates in place, four values per invocation where the count allows', async () => {
    const g = gpu();
    for (const n of [5, 8, 4 * 70001 + 2, 4 * 70001]) {
      const [a, b] = [uniform(n, 1), uniform(n, 2)];
      const acc = g.tensor(a, [n]);
      accumulate(acc, g.tensor(b, [n]));
      expect(Array.from(await acc.toArray())).toEqual(Array.from(a, (v, i) => Math.fround(v + b[i])));
    }
  });

  it('accumulates over fan-out, skips frozen tensors and respects noGrad', async () => {
    const g = gpu();
    const x = g.tensor([1, 2, 3], [3]);
    const frozen = g.tensor([4, 5, 6], [3]);
    x.requiresGrad = true;
    // y = x·x + 2x + frozen·x  →  dy/dx = 2x + 2 + frozen
    g.tidy(() => backward(add(add(mul(x, x), scale(x, 2)), mul(frozen, x))));
    expect(Array.from(await x.grad!.toArray())).toEqual([8, 11, 14]);
    expect(frozen.grad).toBeNull();
    // A second backward adds to the existing gradient (micro-batch accumulation).
    g.tidy(() => backward(scale(x, 3)));
    expect(Array.from(await x.grad!.toArray())).toEqual([11, 14, 17]);
    const inference = noGrad(() => mul(x, x));
    expect(inference.requiresGrad).toBe(false);
    expect(() => backward(inference)).toThrow(/does not require grad/);
  });

  // ((x·w + bias)·x) / (w·w + bias) with x [4, 3], w [3] and bias [4, 1]: every broadcast
  // direction's gradient reduction, chained through autograd.
  const composite = (x: ArrayLike<number>, w: ArrayLike<number>, bias: ArrayLike<number>) => {
    const xw = broadcastRef(x, [4, 3], w, [3], (a, b) => a * b);
    const numerator = broadcastRef(broadcastRef(xw, [4, 3], bias, [4, 1], (a, b) => a + b), [4, 3], x, [4, 3], (a, b) => a * b);
    const denominator = broadcastRef(broadcastRef(w, [3], w, [3], (a, b) => a * b), [3], bias, [4, 1], (a, b) => a + b);
    return broadcastRef(numerator, [4, 3], denominator, [4, 3], (a, b) => a / b);
  };
  testOp('composite of broadcast ops', ([x, w, bias]) => div(mul(add(mul(x, w), bias), x), add(mul(w, w), bias)), ([x, w, bias]) => composite(x, w, bias), [null], {
    gpu,
    inputs: (_, seed) => [
      { data: randn(12, seed), shape: [4, 3] },
      { data: uniform(3, seed + 1, 0.5, 1.5), shape: [3] },
      { data: uniform(4, seed + 2, 1, 2), shape: [4, 1] },
    ],
    // Five f32 roundings of values of size ~1: a few ulps.
    tol: { atol: 1e-6, rtol: 1e-6 },
    outShape: () => [4, 3],
    label: () => 'x [4, 3], w [3], bias [4, 1]',
    gradient: { cases: [null] },
  });
});
