import { backward } from '../autograd/backward.js';
import type { Gpu } from '../gpu/gpu.js';
import type { Tensor } from '../gpu/tensor.js';
import type { AdamW } from '../optim/adamw.js';
import { clipGradNorm, globalGradNorm } from '../optim/grad-norm.js';
import { learningRate, type LrSchedule } from '../optim/lr-schedule.js';

/** The loss, the gradient norm or the updated parameters of a step are not finite (or, from the trainer, the logits it sampled from). */
export class TrainingDiverged extends Error {}

/** What a loss function gives for one micro-batch. */
export interface MicroBatchLoss {
  /**
   * A scalar already weighted by the micro-batch's share of the step (e.g. its tokens over the
   * step's tokens): the step's loss is the sum over micro-batches, and so is its gradient.
   */
  loss: Tensor;
  /** Further tensors to read back with the step (loss terms, entropy, …), by name. */
  readBack?: Readonly<Record<string, Tensor>>;
}

export interface TrainingStepOptions<T> {
  /** Holds the trainable parameters; every one of them must get a gradient. */
  optimizer: AdamW;
  /** Each is laid out, run forward and backward in turn; gradients accumulate across them. */
  microBatches: readonly T[];
  /**
   * Builds the micro-batch's tensors and its loss; runs inside a tidy scope that ends before the next
   * one. null: the caller knows this micro-batch's gradient is exactly zero (e.g. GRPO rows that all
   * have advantage 0), so its forward and backward are left out; the step is otherwise the same.
   */
  loss: (microBatch: T, index: number) => MicroBatchLoss | null;
  /** The global gradient norm is clipped to this before the update. */
  maxGradNorm: number;
  schedule: LrSchedule;
  /** 0-based index of this optimizer step (the schedule's step; errors name step + 1). */
  step: number;
  /** Names of optimizer.params, in order, for the error about a parameter without a gradient. */
  parameterNames?: readonly string[];
  /** What the divergence error says after the values, e.g. where the last good checkpoint is. */
  divergedAdvice?: () => string;
  /** After each micro-batch is recorded (and, when a collection is due, run): how many of how many. */
  onMicroBatch?: (done: number, count: number) => void;
}

export interface MicroBatchValues {
  /** Whether the loss function left this micro-batch out (loss 0, no values). */
  skipped: boolean;
  loss: number;
  /** The micro-batch's readBack tensors, read. */
  values: Record<string, Float32Array>;
}

export interface TrainingStepResult {
  /** Sum of the micro-batches' losses. */
  loss: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Global norm of the trained parameters after the update (f32: not finite past ~1.8e19). */
  parameterNorm: number;
  learningRate: number;
  microBatches: MicroBatchValues[];
  /** Forward and backward of every micro-batch, waited for. */
  trainSeconds: number;
  /** Clipping, the AdamW update and the read-back. */
  optimizerSeconds: number;
}

/**
 * One optimizer step: forward and backward of each micro-batch (gradients accumulate in the
 * parameters' .grad), clip the global gradient norm, AdamW at the schedule's learning rate, clear
 * the gradients, then a single read-back of the norms, each micro-batch's loss and its readBack
 * tensors. Throws TrainingDiverged when the loss, the gradient norm or the updated parameters' norm
 * is not finite (the parameters have then been updated with it; resume from a checkpoint).
 */
export async function trainingStep<T>(gpu: Gpu, options: TrainingStepOptions<T>): Promise<TrainingStepResult> {
  const { optimizer, microBatches } = options;
  if (microBatches.length === 0) throw new Error(`step ${options.step + 1}: no micro-batches to train on`);
  const start = performance.now();
  const perMicro: (Required<MicroBatchLoss> | null)[] = [];
  const readBack: Tensor[] = [];
  try {
    for (const [m, microBatch] of microBatches.entries()) {
      const result = gpu.tidy(() => {
        const computed = options.loss(microBatch, m);
        if (computed === null) return null;
        const { loss, readBack: extra = {} } = computed;
        if (loss.size !== 1) throw new Error(`step ${options.step + 1}: the loss of micro-batch ${m} has ${loss.size} elements, not 1`);
        backward(loss);
        return { loss, readBack: extra };
      });
      perMicro.push(result);
      if (result !== null) {
        readBack.push(result.loss, ...Object.values(result.readBack));
        // Recording every micro-batch before any wait kept all their bind groups alive at once.
        await gpu.reclaim();
      }
      options.onMicroBatch?.(m + 1, microBatches.length);
    }
    if (perMicro.every((result) => result === null)) {
      // Every gradient is exactly zero: AdamW still steps (its moments decay, weight decay applies).
      for (const p of optimizer.params) p.grad = gpu.zeros(p.shape);
    }
    const missing = optimizer.params.flatMap((p, i) => (p.grad ? [] : [options.parameterNames?.[i] ?? `parameter ${i} (${p})`]));
    if (missing.length) throw new Error(`step ${options.step + 1}: the loss gives no gradient to ${missing.join(', ')}`);
    await gpu.sync();
    const trained = performance.now();
    const lr = learningRate(options.schedule, options.step);
    const [gradNorm, parameterNorm] = gpu.tidy(() => {
      const norm = clipGradNorm(optimizer.params.map((p) => p.grad!), options.maxGradNorm);
      optimizer.step(lr);
      optimizer.zeroGrad();
      // Divergence shows here even when the next step's loss is never computed (left-out micro-batches).
      return [norm, globalGradNorm(optimizer.params)];
    });
    readBack.unshift(gradNorm, parameterNorm);
    const read = await gpu.readAll(readBack);
    const end = performance.now();
    let next = 2;
    const values = perMicro.map((p): MicroBatchValues =>
      p === null
        ? { skipped: true, loss: 0, values: {} }
        : { skipped: false, loss: read[next++][0], values: Object.fromEntries(Object.keys(p.readBack).map((name) => [name, read[next++]])) },
    );
    const result: TrainingStepResult = {
      loss: values.reduce((sum, v) => sum + v.loss, 0),
      gradNorm: read[0][0],
      parameterNorm: read[1][0],
      learningRate: lr,
      microBatches: values,
      trainSeconds: (trained - start) / 1000,
      optimizerSeconds: (end - trained) / 1000,
    };
    if (!Number.isFinite(result.loss) || !Number.isFinite(result.gradNorm) || !Number.isFinite(result.parameterNorm)) {
      throw new TrainingDiverged(
        `step ${options.step + 1}: loss ${result.loss}, grad norm ${result.gradNorm}, parameter norm ${result.parameterNorm} — training diverged; ${options.divergedAdvice?.() ?? 'lower the learning rate'}`,
      );
    }
    return result;
  } finally {
    for (const t of readBack) t.dispose();
  }
}

/** Consecutive slices of `size` items (the last may be shorter): the micro-batches of a step. */
export function splitMicroBatches<T>(items: readonly T[], size: number): T[][] {
  if (!Number.isInteger(size) || size < 1) throw new Error(`micro-batch size must be a positive integer, got ${size}`);
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
