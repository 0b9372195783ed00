import { recordOp } from '../autograd/grad-node.js';
import { formatShape, type Tensor } from '../gpu/tensor.js';
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
 */
export function embedding(ids: Tensor, table: Tensor): Tensor {
  if (ids.dtype !== 'u32') throw new Error(`embedding: ids must be u32, got ${ids.dtype} ${formatShape(ids.shape)}`);
  if (table.shape.length !== 2) throw new Error(`embedding: table must be [vocab, dim], got ${formatShape(table.shape)}`);
  if (table.dtype === 'u32') throw new Error(`embedding: table must be f32 or f16, got u32 ${formatShape(table.shape)}`);
  if (table.dtype === 'f16' && table.requiresGrad) {
    throw new Error(`embedding: an f16 table ${formatShape(table.shape)} is frozen and cannot require grad`);
  }
  const [vocab, dim] = table.shape;
  const gpu = table.gpu;
  const out = gpu.empty([...ids.shape, dim]);
  gpu.run(gpu.kernel('embedding', { T: table.dtype }), [ids, table, out], gpu.grid1d(out.size, WG), { u32: [out.size, dim, vocab] });

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
