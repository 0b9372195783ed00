import { noGrad, recordOp } from '../autograd/grad-node.js';
import { vectorOf } from '../gpu/kernel.js';
import { formatShape, numel, Tensor, type Shape } from '../gpu/tensor.js';
import { embedding } from './embedding.js';
import { assertGradientFits } from './gradient.js';
import { assertF32, MAX_BROADCAST_RANK } from './shape.js';

const WG = 256;

function contiguousStrides(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let stride = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = stride;
    stride *= shape[d];
  }
  return strides;
}

function pad4(values: readonly number[], fill: number): number[] {
  return [...Array<number>(MAX_BROADCAST_RANK - values.length).fill(fill), ...values];
}

interface Strided {
  tensor: Tensor;
  strides: readonly number[];
  offset: number;
}

/**
 * The same copy counted in vec4s, when the last axis runs along both tensors in whole vec4s that
 * start at multiples of 4 (a slice, concatenation or permutation that keeps the last axis); else null.
 */
function inVectors(shape: Shape, src: Strided, dst: Strided): { shape: Shape; src: Strided; dst: Strided } | null {
  const last = shape.length - 1;
  const aligned = (t: Strided) => t.strides[last] === 1 && t.offset % 4 === 0 && t.strides.every((stride, d) => d === last || shape[d] === 1 || stride % 4 === 0);
  if (last < 0 || shape[last] % 4 !== 0 || !aligned(src) || !aligned(dst)) return null;
  const quarter = (t: Strided): Strided => ({ tensor: t.tensor, strides: t.strides.map((stride, d) => (d === last ? 1 : shape[d] === 1 ? 0 : stride / 4)), offset: t.offset / 4 });
  return { shape: shape.map((size, d) => (d === last ? size / 4 : size)), src: quarter(src), dst: quarter(dst) };
}

/** Copies the `shape`-sized block of src into dst, each addressed through its own strides and offset. */
function stridedCopy(shape: Shape, src: Strided, dst: Strided): void {
  const gpu = src.tensor.gpu;
  const vectors = inVectors(shape, src, dst);
  const copy = vectors ?? { shape, src, dst };
  const n = copy.shape.reduce((a, b) => a * b, 1);
  gpu.run(gpu.kernel('layout', vectorOf(vectors ? 4 : 1)), [src.tensor, dst.tensor], gpu.grid1d(n, WG), {
    u32: [n, copy.src.offset, copy.dst.offset, 0, ...pad4(copy.shape, 1), ...pad4(copy.src.strides, 0), ...pad4(copy.dst.strides, 0)],
  });
}

function checkRank(op: string, x: Tensor): void {
  assertF32(op, x);
  if (x.shape.length > MAX_BROADCAST_RANK) throw new Error(`${op}: rank ${x.shape.length} > ${MAX_BROADCAST_RANK} is not supported: ${formatShape(x.shape)}`);
}

/** An axis in [0, rank), accepting negative axes counted from the end. */
function normaliseAxis(op: string, axis: number, shape: Shape): number {
  const a = axis < 0 ? axis + shape.length : axis;
  if (!Number.isInteger(a) || a < 0 || a >= shape.length) throw new Error(`${op}: axis ${axis} is out of range for ${formatShape(shape)}`);
  return a;
}

/** x (read as `shape`, which a gradient may only match in size) with its axes reordered; not recorded. */
function permuteCopy(x: Tensor, shape: Shape, dims: readonly number[]): Tensor {
  const outShape = dims.map((d) => shape[d]);
  const strides = contiguousStrides(shape);
  const out = x.gpu.empty(outShape);
  stridedCopy(outShape, { tensor: x, strides: dims.map((d) => strides[d]), offset: 0 }, { tensor: out, strides: contiguousStrides(outShape), offset: 0 });
  return out;
}

/** x (read as `shape`) restricted to start ≤ i < end along axis a; not recorded. */
function sliceCopy(x: Tensor, shape: Shape, a: number, start: number, end: number): Tensor {
  const outShape = shape.map((d, i) => (i === a ? end - start : d));
  const strides = contiguousStrides(shape);
  const out = x.gpu.empty(outShape);
  stridedCopy(outShape, { tensor: x, strides, offset: start * strides[a] }, { tensor: out, strides: contiguousStrides(outShape), offset: 0 });
  return out;
}

/** Reorders the axes of x (rank ≤ 4): output axis i is input axis dims[i]. */
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  checkRank('permute', x);
  const rank = x.shape.length;
  if (dims.length !== rank || [...dims].sort((a, b) => a - b).some((d, i) => d !== i)) {
    throw new Error(`permute: [${dims.join(', ')}] is not a permutation of the axes of ${formatShape(x.shape)}`);
  }
  const out = permuteCopy(x, x.shape, dims);
  const inverse = new Array<number>(rank);
  dims.forEach((d, i) => (inverse[d] = i));
  return recordOp('permute', [x], out, (g) => {
    assertGradientFits('permute', g, out);
    return [permuteCopy(g, out.shape, inverse)];
  });
}

/** Swaps the last two axes: [..., m, n] → [..., n, m]. */
export function transpose(x: Tensor): Tensor {
  if (x.shape.length < 2) throw new Error(`transpose: needs at least two axes, got ${formatShape(x.shape)}`);
  const dims = x.shape.map((_, i) => i);
  dims.splice(-2, 2, dims.length - 1, dims.length - 2);
  return permute(x, dims);
}

/** Elements start ≤ i < end along `axis` (rank ≤ 4), e.g. one of q, k, v from a fused projection. */
export function slice(x: Tensor, axis: number, start: number, end: number): Tensor {
  checkRank('slice', x);
  const a = normaliseAxis('slice', axis, x.shape);
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > x.shape[a] || start > end) {
    throw new Error(`slice: [${start}, ${end}) is out of range for axis ${axis} of ${formatShape(x.shape)}`);
  }
  const out = sliceCopy(x, x.shape, a, start, end);
  const gpu = x.gpu;
  return recordOp('slice', [x], out, (g) => {
    assertGradientFits('slice', g, out);
    const dx = gpu.zeros(x.shape);
    const xStrides = contiguousStrides(x.shape);
    stridedCopy(out.shape, { tensor: g, strides: contiguousStrides(out.shape), offset: 0 }, { tensor: dx, strides: xStrides, offset: start * xStrides[a] });
    return [dx];
  });
}

/** Joins tensors along `axis` (rank ≤ 4); all other axes must agree. */
export function concat(parts: readonly Tensor[], axis: number): Tensor {
  if (parts.length === 0) throw new Error('concat: needs at least one tensor');
  for (const t of parts) checkRank('concat', t);
  const first = parts[0].shape;
  const a = normaliseAxis('concat', axis, first);
  for (const t of parts) {
    if (t.shape.length !== first.length || t.shape.some((d, i) => i !== a && d !== first[i])) {
      throw new Error(`concat: shapes ${formatShape(first)} and ${formatShape(t.shape)} differ off axis ${axis}`);
    }
  }
  const shape = first.map((d, i) => (i === a ? parts.reduce((sum, t) => sum + t.shape[a], 0) : d));
  const outStrides = contiguousStrides(shape);
  const out = parts[0].gpu.empty(shape);
  const starts: number[] = [];
  let start = 0;
  for (const t of parts) {
    starts.push(start);
    stridedCopy(t.shape, { tensor: t, strides: contiguousStrides(t.shape), offset: 0 }, { tensor: out, strides: outStrides, offset: start * outStrides[a] });
    start += t.shape[a];
  }
  return recordOp('concat', parts, out, (g) => {
    assertGradientFits('concat', g, out);
    return parts.map((t, i) => (t.requiresGrad ? sliceCopy(g, shape, a, starts[i], starts[i] + t.shape[a]) : null));
  });
}

/** x with another shape of the same element count, sharing its storage (no copy; differentiable). */
export function view(x: Tensor, shape: Shape): Tensor {
  if (numel(shape) !== x.size) throw new Error(`view: cannot view ${formatShape(x.shape)} as ${formatShape(shape)}`);
  const out = x.gpu.adopt(new Tensor(x.gpu, x.buffer, shape, x.dtype), x);
  return recordOp('view', [x], out, (g) => [view(g, x.shape)]);
}

/**
 * Row rows[b] of x [N, ...] as row b of the output [B, ...] (u32 rows [B], each < N): one prompt's
 * keys read by each of its completions. The backward sums the gradients of a row's copies, in a
 * fixed order (embedding's table gradient, which is exactly this gather).
 */
export function repeatRows(x: Tensor, rows: Tensor): Tensor {
  assertF32('repeatRows', x);
  if (rows.dtype !== 'u32' || rows.shape.length !== 1) throw new Error(`repeatRows: rows must be u32 [B], got ${rows.dtype} ${formatShape(rows.shape)}`);
  if (x.shape.length === 0 || x.shape[0] === 0) throw new Error(`repeatRows: x ${formatShape(x.shape)} has no rows`);
  const [count, ...inner] = x.shape;
  return view(embedding(rows, view(x, [count, numel(inner)])), [rows.shape[0], ...inner]);
}

/**
 * Row index[i] of x [N, ...] as row i of the output [M, ...] (u32 index [M]), a zero row where
 * index[i] ≥ N: padding a packed batch out to a rectangular one, or packing it back. Each row of x
 * must be picked at most once, and inverse (u32 [N]) names the output row that picked it (≥ M for
 * none), so the backward is the same gather the other way, a copy with no sums.
 */
export function gatherRows(x: Tensor, index: Tensor, inverse: Tensor): Tensor {
  const op = 'gatherRows';
  assertF32(op, x);
  if (x.shape.length === 0 || x.shape[0] === 0) throw new Error(`${op}: x ${formatShape(x.shape)} has no rows`);
  for (const [name, t, rows] of [['index', index, null], ['inverse', inverse, x.shape[0]]] as const) {
    if (t.dtype !== 'u32' || t.shape.length !== 1 || (rows !== null && t.shape[0] !== rows)) {
      throw new Error(`${op}: ${name} must be u32 [${rows ?? 'M'}], got ${t.dtype} ${formatShape(t.shape)} for x ${formatShape(x.shape)}`);
    }
  }
  const [count, ...inner] = x.shape;
  const width = numel(inner);
  const out = view(noGrad(() => embedding(index, view(x, [count, width]))), [index.shape[0], ...inner]);
  return recordOp(op, [x], out, (g) => {
    assertGradientFits(op, g, out);
    return [gatherRows(view(g, [index.shape[0], ...inner]), inverse, index)];
  });
}
