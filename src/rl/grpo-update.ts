import { noGrad } from '../autograd/grad-node.js';
import type { Gpu } from '../gpu/gpu.js';
import type { Tensor } from '../gpu/tensor.js';
import type { LlamaModel } from '../model/llama.js';
import type { LoraAdapters } from '../nn/lora.js';
import { maskedMean } from '../ops/cross-entropy.js';
import { view } from '../ops/layout.js';
import type { AdamW } from '../optim/adamw.js';
import type { LrSchedule } from '../optim/lr-schedule.js';
import { completionLogprobs, modelForwards, sequenceBatch, sharedPromptBatch, type SequenceBatch, type SequenceInput } from '../train/completion-logprobs.js';
import { splitMicroBatches, trainingStep } from '../train/step.js';
import type { GrpoConfig } from './grpo-config.js';
import { grpoLoss, namedGrpoMetrics } from './grpo-loss.js';

export type StepMetrics = Record<string, number>;

/** Old (num_iterations > 1) and reference (beta > 0) log-probs of a rollout, per micro-batch, taken before any update. */
export interface CachedLogprobs {
  old: Tensor[];
  ref: Tensor[];
}

export interface GrpoStepHooks {
  /** Where a diverged step's error points the user (the last good checkpoint). */
  divergedAdvice: () => string;
  onMicroBatch?: (done: number, count: number) => void;
}

/**
 * GRPO's optimizer step on a scored rollout: its micro-batches (config.microBatchSize sequences
 * each), the loss over them, and what the step reports under TRL's metric names. Rows and
 * micro-batches whose gradient is exactly zero are left out (see hasZeroGradient).
 */
export class GrpoUpdate {
  constructor(
    private readonly gpu: Gpu,
    private readonly config: GrpoConfig,
    private readonly model: LlamaModel,
    private readonly lora: LoraAdapters,
    private readonly optimizer: AdamW,
  ) {}

  private get schedule(): LrSchedule {
    const c = this.config;
    if (c.lrSchedule === 'constant') return { kind: 'constant', lr: c.learningRate, warmupSteps: c.warmupSteps };
    return { kind: c.lrSchedule, lr: c.learningRate, warmupSteps: c.warmupSteps, totalSteps: c.steps };
  }

  /** What the loss needs besides the policy's log-probs; dispose its tensors after the rollout's last step. */
  async cachedLogprobs(sequences: readonly SequenceInput[]): Promise<CachedLogprobs> {
    const c = this.config;
    const old: Tensor[] = [];
    const ref: Tensor[] = [];
    if (c.numIterations === 1 && c.beta === 0) return { old, ref };
    this.lora.training = false;
    for (const micro of this.microBatches(sequences)) {
      noGrad(() =>
        this.gpu.tidy(() => {
          const batch = this.layout(micro);
          if (c.numIterations > 1) old.push(this.gpu.keep(completionLogprobs(this.model, batch).logprobs));
          if (c.beta > 0) {
            this.lora.enabled = false;
            try {
              // The reference is the base alone: the sampling forwards' outputs carried the adapters.
              ref.push(this.gpu.keep(completionLogprobs(this.model, { ...batch, projections: undefined }).logprobs));
            } finally {
              this.lora.enabled = true;
            }
          }
        }),
      );
      await this.gpu.reclaim();
    }
    return { old, ref };
  }

  /**
   * The completions of a prompt are consecutive, so with shared prompts a micro-batch of
   * microBatchSize sequences runs each of its prompts once; a group split between micro-batches
   * runs its prompt once in each.
   */
  private layout(sequences: readonly SequenceInput[]): SequenceBatch {
    return this.config.promptForward === 'shared' ? sharedPromptBatch(this.gpu, sequences) : sequenceBatch(this.gpu, sequences);
  }

  private microBatches<T>(items: readonly T[]): T[][] {
    return splitMicroBatches(items, this.config.microBatchSize);
  }

  /** One trainingStep (optimizer step `step`, 0-based) over the micro-batches of the rollout with GRPO's loss; its metrics under TRL's names. */
  async step(sequences: readonly SequenceInput[], advantages: Float64Array, cached: CachedLogprobs, step: number, hooks: GrpoStepHooks): Promise<StepMetrics> {
    const c = this.config;
    const gpu = this.gpu;
    const unmaskedTokens = (batch: readonly SequenceInput[]) => batch.reduce((n, s) => n + (s.masked ? 0 : s.completionIds.length), 0);
    // dapo's normaliser: the rollout's completion tokens, however many of its rows are trained.
    const tokensInBatch = unmaskedTokens(sequences);
    const kept = this.rowsToTrain(sequences, advantages);
    const rows = kept ? kept.map((i) => sequences[i]) : sequences;
    const rowAdvantages = kept ? Float64Array.from(kept, (i) => advantages[i]) : advantages;
    const micro = this.microBatches(rows);
    const computed = { tokens: 0, positions: 0 };
    const start = performance.now();
    this.lora.training = true;
    const result = await trainingStep(gpu, {
      optimizer: this.optimizer,
      microBatches: micro,
      maxGradNorm: c.maxGradNorm,
      schedule: this.schedule,
      step,
      loss: (batchSequences, m) => {
        const first = m * c.microBatchSize;
        if (batchSequences.every((s, i) => this.hasZeroGradient(s, rowAdvantages[first + i]))) {
          this.lora.skipForwards(modelForwards(batchSequences, c.promptForward === 'shared'));
          return null;
        }
        const batch = this.layout(batchSequences);
        computed.tokens += batch.computedTokens;
        computed.positions += batch.computedPositions;
        const { logprobs, entropy } = completionLogprobs(this.model, batch);
        const { loss, metrics } = grpoLoss(
          {
            logprobs,
            oldLogprobs: cached.old[m],
            refLogprobs: cached.ref[m],
            advantages: gpu.tensor(Array.from(rowAdvantages.slice(first, first + batchSequences.length)), [batchSequences.length]),
            mask: batch.mask,
          },
          {
            beta: c.beta,
            epsilonLow: c.epsilon,
            epsilonHigh: c.epsilonHigh ?? c.epsilon,
            delta: c.delta,
            lossType: c.lossType,
            importanceSampling: c.importanceSampling,
            klEstimator: c.klEstimator,
            maxCompletionLength: c.maxNewTokens,
            numItemsInBatch: Math.max(1, tokensInBatch),
            gradientAccumulationSteps: micro.length,
          },
        );
        return { loss, readBack: { metrics, entropy: maskedMean(view(entropy, [entropy.size]), view(batch.mask, [batch.mask.size])) } };
      },
      divergedAdvice: hooks.divergedAdvice,
      onMicroBatch: hooks.onMicroBatch,
    });
    const end = performance.now();
    // Entropy and the loss's metrics describe the micro-batches that ran (none: left out of the row).
    let entropy = 0;
    let entropyTokens = 0;
    result.microBatches.forEach(({ skipped, values }, m) => {
      const tokens = unmaskedTokens(micro[m]);
      if (!skipped && tokens > 0) {
        entropy += values.entropy[0] * tokens;
        entropyTokens += tokens;
      }
    });
    const ran = result.microBatches.filter(({ skipped }) => !skipped);
    const lossMetrics = ran.map(({ values }) => namedGrpoMetrics(values.metrics, { beta: c.beta, lossType: c.lossType }));
    const merged: StepMetrics = {};
    for (const key of Object.keys(lossMetrics[0] ?? {})) {
      const xs = lossMetrics.map((m) => m[key]);
      merged[key] = key.endsWith('_min') ? Math.min(...xs) : key.endsWith('_max') ? Math.max(...xs) : mean(xs);
    }
    return {
      grad_norm: result.gradNorm,
      loss: result.loss,
      ...(entropyTokens > 0 ? { entropy: entropy / entropyTokens } : {}),
      ...merged,
      'completions/skipped_in_training': sequences.length - rows.length + micro.reduce((n, m, i) => n + (result.microBatches[i].skipped ? m.length : 0), 0),
      learning_rate: result.learningRate,
      'time/train_s': result.trainSeconds,
      'time/optimizer_s': result.optimizerSeconds,
      // What the forward/backward ran: real tokens, and positions with padding.
      'tokens/computed': computed.tokens,
      'tokens/computed_positions': computed.positions,
      'tokens_per_second/train': sequences.reduce((n, s) => n + s.promptIds.length + s.completionIds.length, 0) / ((end - start) / 1000),
    };
  }

  /**
   * Whether a row's gradient is exactly zero, so it needs no forward or backward: with β = 0 every
   * term of the loss is a multiple of the row's advantage (0 throughout a group whose completions got
   * the same reward), and a masked row counts nothing. Always false with `--zero-advantage-completions train`.
   */
  private hasZeroGradient(sequence: SequenceInput, advantage: number): boolean {
    return this.config.zeroAdvantageCompletions === 'skip' && this.config.beta === 0 && (sequence.masked === true || advantage === 0);
  }

  /**
   * With dapo, one optimizer step per rollout and no LoRA dropout, the rows with a zero gradient
   * leave the step before it is split into micro-batches: dapo divides by the rollout's token count
   * however its rows are split (TRL's num_items_in_batch), and without dropout the other rows'
   * computation does not depend on them — the same gradient up to float rounding. null: every row
   * stays (micro-batches of such rows alone are still left out whole in step(); the loss types
   * that normalise per micro-batch depend on how rows are split).
   */
  private rowsToTrain(sequences: readonly SequenceInput[], advantages: Float64Array): number[] | null {
    const c = this.config;
    if (c.lossType !== 'dapo' || c.numIterations !== 1 || c.loraDropout !== 0) return null;
    const kept = sequences.flatMap((s, i) => (this.hasZeroGradient(s, advantages[i]) ? [] : [i]));
    return kept.length > 0 && kept.length < sequences.length ? kept : null;
  }
}

export function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}
