import { formatShape, type Shape, type Tensor } from '../gpu/tensor.js';

/** Shape checks shared by ops; every message names the op and the shapes involved. */

export function assertF32(op: string, ...tensors: Tensor[]): void {
  for (const t of tensors) if (t.dtype !== 'f32') throw new Error(`${op}: expected f32, got ${t.dtype} ${formatShape(t.shape)}`);
}

export function assertRank(op: string, t: Tensor, rank: number, name = 'input'): void {
  if (t.shape.length !== rank) throw new Error(`${op}: ${name} must have rank ${rank}, got ${formatShape(t.shape)}`);
}

export function assertSameShape(op: string, a: Tensor, b: Tensor): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new Error(`${op}: shapes differ: ${formatShape(a.shape)} vs ${formatShape(b.shape)}`);
  }
}

/** NumPy broadcasting of two shapes. */
export function broadcastShapes(op: string, a: Shape, b: Shape): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`${op}: shapes ${formatShape(a)} and ${formatShape(b)} do not broadcast`);
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

export const MAX_BROADCAST_RANK = 4;

/** Left-pads a shape with ones to rank 4 (the broadcasting shaders' fixed rank). */
export function padShape4(op: string, shape: Shape): number[] {
  if (shape.length > MAX_BROADCAST_RANK) throw new Error(`${op}: rank ${shape.length} > ${MAX_BROADCAST_RANK} is not supported: ${formatShape(shape)}`);
  return [...Array<number>(MAX_BROADCAST_RANK - shape.length).fill(1), ...shape];
}

/** Row-major strides of `shape` seen through broadcasting to `outShape` (0 where broadcast). */
export function broadcastStrides(op: string, shape: Shape, outShape: Shape): number[] {
  const padded = padShape4(op, shape);
  const out = padShape4(op, outShape);
  const strides = [0, 0, 0, 0];
  let stride = 1;
  for (let d = 3; d >= 0; d--) {
    strides[d] = padded[d] === 1 && out[d] !== 1 ? 0 : stride;
    stride *= padded[d];
  }
  return strides;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
