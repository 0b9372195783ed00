import { recordOp } from '../autograd/grad-node.js';
import type { Specialisation } from '../gpu/shader-source.js';
import { formatShape, Tensor } from '../gpu/tensor.js';
import { assertGradientFits } from './gradient.js';

const WG = 256;
const LINKS_WG = 64;

/**
 * Rows of `table` [vocab, dim] (f32, or f16 when frozen) picked by u32 `ids` of any shape, as f32
 * [...ids.shape, dim]. Ids live on the GPU and are not checked here: callers validate them on the
 * host (the tokenizer path does); an id ≥ vocab reads as a zero row and receives no gradient.
 *
 * The table's gradient is a deterministic scatter-add (training must resume bit-for-bit, which
 * float atomics would break): positions sharing an id are linked into lists in position order,
 * then each table element sums its list in that order. Cost O(positions² + vocab·dim +
 * positions·dim), where the per-(row, column) scan of all ids would be O(vocab·dim·positions).
 * A table too large for one storage binding comes as consecutive blocks of its rows (frozen; see
 * blockEmbedding); one block is the table itself.
 */
export function embedding(ids: Tensor, table: Tensor | readonly Tensor[]): Tensor {
  if (!(table instanceof Tensor)) return table.length === 1 ? embedding(ids, table[0]) : blockEmbedding(ids, table);
  checkTable(ids, table);
  const [vocab, dim] = table.shape;
  const gpu = table.gpu;
  const out = gpu.empty([...ids.shape, dim]);
  gather(table, ids, out, 0, false);
  return recordOp('embedding', [table], out, (g) => {
    assertGradientFits('embedding', g, out);
    const positions = ids.size;
    const next = gpu.empty([positions], 'u32');
    const head = gpu.zeros([vocab], 'u32');
    gpu.run(gpu.kernel('embedding_grad_links'), [ids, next, head], gpu.grid1d(positions, LINKS_WG), { u32: [positions, vocab] });
    const dTable = gpu.empty(table.shape);
    gpu.run(gpu.kernel('embedding_grad'), [head, next, g, dTable], gpu.grid1d(dTable.size, WG), { u32: [dTable.size, dim] });
    next.dispose();
    head.dispose();
    return [dTable];
  });
}

function checkTable(ids: Tensor, table: Tensor): void {
  if (ids.dtype !== 'u32') throw new Error(`embedding: ids must be u32, got ${ids.dtype} ${formatShape(ids.shape)}`);
  if (table.shape.length !== 2) throw new Error(`embedding: table must be [vocab, dim], got ${formatShape(table.shape)}`);
  if (table.dtype === 'u32') throw new Error(`embedding: table must be f32 or f16, got u32 ${formatShape(table.shape)}`);
  if (table.dtype === 'f16' && table.requiresGrad) {
    throw new Error(`embedding: an f16 table ${formatShape(table.shape)} is frozen and cannot require grad`);
  }
}

/**
 * The rows of a table split into blocks of consecutive rows: every block writes the positions
 * whose ids fall in its range (a copy, so the result is the whole table's bit for bit); ids past
 * the last block read as zero rows. The blocks are frozen: no gradient.
 */
function blockEmbedding(ids: Tensor, blocks: readonly Tensor[]): Tensor {
  const dim = blocks[0].shape[1];
  for (const b of blocks) {
    checkTable(ids, b);
    if (b.requiresGrad || b.shape[1] !== dim) throw new Error(`embedding: blocks of a table must be frozen [rows, ${dim}], got ${b}${b.requiresGrad ? ' requiring grad' : ''}`);
  }
  const gpu = ids.gpu;
  const out = gpu.zeros([...ids.shape, dim]);
  let first = 0;
  for (const b of blocks) {
    gather(b, ids, out, first, true);
    first += b.shape[0];
  }
  return out;
}

/** Records the gather of rows of `table` (rows first.. of the matrix `ids` index) into `out`. */
function gather(table: Tensor, ids: Tensor, out: Tensor, first: number, block: boolean): void {
  const gpu = table.gpu;
  const [rows, dim] = table.shape;
  // f32 rows a multiple of 4 wide go 16 bytes at a time (see shaders/embedding.wgsl).
  const lanes = table.dtype === 'f32' && dim % 4 === 0 ? 4 : 1;
  const types: Specialisation = lanes === 4 ? { T: 'vec4<f32>', O: 'vec4<f32>' } : { T: table.dtype };
  const n = out.size / lanes;
  gpu.run(gpu.kernel('embedding', { ...types, BLOCK: block }), [ids, table, out], gpu.grid1d(n, WG), { u32: [n, dim / lanes, rows, first] });
}
