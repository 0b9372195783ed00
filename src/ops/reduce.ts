import { recordOp } from '../autograd/grad-node.js';
import { formatShape, type Shape, type Tensor } from '../gpu/tensor.js';
import { lastAxis, rowGrid, rowWorkgroupSize } from './rows.js';
import { assertF32 } from './shape.js';
import { assertGradientFits } from './gradient.js';

const KINDS = { sum: 0, max: 1 } as const;
type Kind = keyof typeof KINDS;
const SPREAD_WG = 256;
/** Elements per workgroup in the first pass of an all-elements reduce. */
const CHUNK = 4096;

/**
 * One value per row of x (row r = elements [r·cols, min(r·cols + cols, n)) of the flat data),
 * times `scale` for sums; for max also the position of each row's first maximum within the row.
 */
function reduceRows(kind: Kind, x: Tensor, rows: number, cols: number, scale: number, shape: Shape): { values: Tensor; index: Tensor } {
  const gpu = x.gpu;
  const values = gpu.empty(shape);
  const index = gpu.empty(shape, 'u32');
  gpu.run(gpu.kernel('reduce', { OP: KINDS[kind], WG: rowWorkgroupSize(gpu, cols) }), [x, values, index], rowGrid(gpu, rows), {
    u32: [rows, cols, x.size],
    f32: [scale],
  });
  return { values, index };
}

/** reduceRows' gradient for x: g · scale over each row (sum), or g at each row's first maximum (max). */
function spread(kind: Kind, g: Tensor, index: Tensor, cols: number, scale: number, shape: Shape): Tensor {
  const gpu = g.gpu;
  const dx = gpu.empty(shape);
  gpu.run(gpu.kernel('reduce_backward', { OP: KINDS[kind] }), [g, index, dx], gpu.grid1d(dx.size, SPREAD_WG), {
    u32: [cols, dx.size],
    f32: [scale],
  });
  return dx;
}

function reduceLastAxis(name: string, kind: Kind, x: Tensor, mean: boolean): Tensor {
  assertF32(name, x);
  const { rows, cols, outer } = lastAxis(name, x);
  const scale = mean ? 1 / cols : 1;
  const { values, index } = reduceRows(kind, x, rows, cols, scale, outer);
  const out = recordOp(name, [x], values, (g) => {
    assertGradientFits(name, g, values);
    return [spread(kind, g, index, cols, scale, x.shape)];
  });
  if (!out.node) index.dispose();
  return out;
}

function reduceAll(name: string, kind: Kind, x: Tensor, mean: boolean): Tensor {
  assertF32(name, x);
  if (x.size === 0) throw new Error(`${name}: cannot reduce the empty tensor ${formatShape(x.shape)}`);
  // Two passes, both on the GPU: chunks of CHUNK elements, then the chunks' results as one row.
  const chunks = Math.ceil(x.size / CHUNK);
  const scale = mean ? 1 / x.size : 1;
  const first = reduceRows(kind, x, chunks, CHUNK, 1, [chunks]);
  const second = reduceRows(kind, first.values, 1, chunks, scale, [1]);
  first.values.dispose();
  const out = recordOp(name, [x], second.values, (g) => {
    assertGradientFits(name, g, second.values);
    // The sum kernel ignores the index; any u32 buffer binds.
    if (kind === 'sum') return [spread('sum', g, second.index, x.size, scale, x.shape)];
    // The max of all is the max over chunks of each chunk's max, so its gradient chains two routings.
    const dChunks = spread('max', g, second.index, chunks, 1, [chunks]);
    const dx = spread('max', dChunks, first.index, CHUNK, 1, x.shape);
    dChunks.dispose();
    return [dx];
  });
  if (!out.node) {
    first.index.dispose();
    second.index.dispose();
  }
  return out;
}

/** Sum along the last axis: [..., n] → [...]. */
export const sum = (x: Tensor): Tensor => reduceLastAxis('sum', 'sum', x, false);
/** Mean along the last axis: [..., n] → [...]. */
export const mean = (x: Tensor): Tensor => reduceLastAxis('mean', 'sum', x, true);
/** Max along the last axis: [..., n] → [...]; the gradient goes to the first maximum of each row. */
export const max = (x: Tensor): Tensor => reduceLastAxis('max', 'max', x, false);
/** Sum of all elements → [1]. */
export const sumAll = (x: Tensor): Tensor => reduceAll('sumAll', 'sum', x, false);
/** Mean of all elements → [1]. */
export const meanAll = (x: Tensor): Tensor => reduceAll('meanAll', 'sum', x, true);
/** Max of all elements → [1]; the gradient goes to the first maximum in row-major order. */
export const maxAll = (x: Tensor): Tensor => reduceAll('maxAll', 'max', x, false);

/** Position of the first maximum along the last axis: [..., n] → u32 [...]; not differentiable. */
export function argmax(x: Tensor): Tensor {
  assertF32('argmax', x);
  const { rows, cols, outer } = lastAxis('argmax', x);
  const { values, index } = reduceRows('max', x, rows, cols, 1, outer);
  values.dispose();
  return index;
}
