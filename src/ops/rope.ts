import { recordOp } from '../autograd/grad-node.js';
import type { Gpu } from '../gpu/gpu.js';
import { elementVectors } from '../gpu/kernel.js';
import { formatShape, type Tensor } from '../gpu/tensor.js';
import { ropeInverseFrequencies, type RopeScaling } from '../io/rope-scaling.js';
import { assertF32, assertRank } from './shape.js';

export interface RopeOptions {
  /** RoPE base (rope_theta): 10000 for Llama 2, 100000 for SmolLM2-135M. */
  theta: number;
  /** transformers' rope_type and its parameters; default plain RoPE. */
  scaling?: RopeScaling;
  /**
   * Positions whose cos/sin come from the exact host-computed table (default 8192, SmolLM2's
   * max_position_embeddings). Larger positions use the GPU's own cos/sin, which on GPUs with fast
   * approximate trigonometry is less exact for large angles.
   */
  tablePositions?: number;
}

const WG = 64;
const DEFAULT_TABLE_POSITIONS = 8192;

interface RopeTables {
  invFreq: Tensor;
  /** [positions, 2, D/2]: each position's cos row, then its sin row. */
  cosSin: Tensor;
  /** Multiplies cos and sin (yarn's attention factor; 1 otherwise). */
  attentionFactor: number;
}

const tableCache = new WeakMap<Gpu, Map<string, RopeTables>>();

/**
 * inv_freq and the cos/sin table exactly as Hugging Face computes them in float32:
 * inv_freq from ropeInverseFrequencies (1 / theta^(f32(2i)/D) for plain RoPE), angle =
 * f32(position) · inv_freq rounded to f32, then cos/sin of that f32 angle (here in float64,
 * rounded to f32: the correctly rounded values, which PyTorch's f32 cos/sin match to within an
 * ulp), times the attention factor in f32.
 */
function ropeTables(gpu: Gpu, headDim: number, theta: number, scaling: RopeScaling, positions: number): RopeTables {
  let perGpu = tableCache.get(gpu);
  if (!perGpu) tableCache.set(gpu, (perGpu = new Map()));
  const key = `${headDim}:${theta}:${JSON.stringify(scaling)}:${positions}`;
  let tables = perGpu.get(key);
  if (!tables) {
    const half = headDim / 2;
    const { invFreq, attentionFactor } = ropeInverseFrequencies(headDim, theta, scaling);
    const factor = Math.fround(attentionFactor);
    const cosSin = new Float32Array(positions * half * 2);
    for (let pos = 0; pos < positions; pos++) {
      for (let i = 0; i < half; i++) {
        const angle = Math.fround(pos * invFreq[i]);
        cosSin[2 * pos * half + i] = Math.fround(Math.cos(angle)) * factor;
        cosSin[(2 * pos + 1) * half + i] = Math.fround(Math.sin(angle)) * factor;
      }
    }
    // Cached for the device's lifetime, so no tidy scope may dispose them.
    tables = { invFreq: gpu.keep(gpu.tensor(invFreq, [half])), cosSin: gpu.keep(gpu.tensor(cosSin, [positions, 2, half])), attentionFactor: factor };
    perGpu.set(key, tables);
  }
  return tables;
}

function launch(x: Tensor, positions: Tensor, tables: RopeTables, direction: 1 | -1): Tensor {
  const gpu = x.gpu;
  const [, , heads, headDim] = x.shape;
  const out = gpu.empty(x.shape);
  // An invocation rotates 4 consecutive pairs of a head when D/2 allows.
  const { values, invocations: halfDim } = elementVectors(headDim / 2);
  const invocations = (x.size / headDim) * halfDim;
  gpu.run(gpu.kernel('rope', values), [x, positions, tables.invFreq, tables.cosSin, out], gpu.grid1d(invocations, WG), {
    u32: [invocations, heads, halfDim, tables.cosSin.shape[0]],
    f32: [direction, tables.attentionFactor],
  });
  return out;
}

/**
 * Rotary position embedding (Hugging Face Llama rotate-half: pairs (i, i + D/2) rotated by
 * position · inv_freq_i, inv_freq = theta^(−2i/D) or its scaled form, cos/sin times the attention factor). x [B, T, H, D] f32, positions u32 [B, T] (per-row position ids, so
 * left-padded prompts can start at their own offsets). The backward rotates by the negative angle.
 */
export function rope(x: Tensor, positions: Tensor, opts: RopeOptions): Tensor {
  const op = 'rope';
  assertRank(op, x, 4, 'x [B, T, H, D]');
  assertF32(op, x);
  const [batch, queries, , headDim] = x.shape;
  if (positions.dtype !== 'u32' || positions.shape.length !== 2 || positions.shape[0] !== batch || positions.shape[1] !== queries) {
    throw new Error(`${op}: positions must be u32 [${batch}, ${queries}] for x ${formatShape(x.shape)}, got ${positions.dtype} ${formatShape(positions.shape)}`);
  }
  if (headDim % 2 !== 0) throw new Error(`${op}: head dim must be even, got x ${formatShape(x.shape)}`);
  if (!(opts.theta > 0)) throw new Error(`${op}: theta must be positive, got ${opts.theta}`);
  const tablePositions = opts.tablePositions ?? DEFAULT_TABLE_POSITIONS;
  if (!Number.isInteger(tablePositions) || tablePositions < 1) throw new Error(`${op}: tablePositions must be a positive integer, got ${tablePositions}`);
  const tables = ropeTables(x.gpu, headDim, opts.theta, opts.scaling ?? { rope_type: 'default' }, tablePositions);
  return recordOp(op, [x], launch(x, positions, tables, 1), (g) => [launch(g, positions, tables, -1)]);
}
