import type { PromptRow } from '../data/jsonl.js';
import type { Gpu } from '../gpu/gpu.js';
import { maxRssBytes, memoryBreakdown, processMappings } from '../gpu/memory.js';
import { NonFiniteLogits } from '../generate/sampler.js';
import type { LoadedModel } from '../model/load.js';
import type { ProjectionStore } from '../model/projection-store.js';
import type { LoraAdapters } from '../nn/lora.js';
import { matmulVariantChoices } from '../ops/matmul-variants.js';
import type { AdamW } from '../optim/adamw.js';
import type { TritonRunner } from '../rewards/triton-runner.js';
import type { CompletionScore, RewardFunction } from '../rewards/types.js';
import type { TaskData } from '../tasks/load.js';
import type { SequenceInput } from '../train/completion-logprobs.js';
import { TrainingDiverged } from '../train/step.js';
import { groupAdvantages } from './advantages.js';
import { latestCheckpoint, saveCheckpoint, type TrainerState } from './checkpoint.js';
import { encodePrompt, evalMetrics, evaluateHeldOut, scoreCompletions, scoredCompletion, type EvalResult } from './evaluate.js';
import { validateConfig, type GrpoConfig } from './grpo-config.js';
import { GrpoUpdate, mean, type CachedLogprobs, type StepMetrics } from './grpo-update.js';
import { adoptAdapterSettings } from './init-adapter.js';
import type { MemoryPlan } from './memory-plan.js';
import { rolloutPrompts } from './prompt-order.js';
import { rollout, type Completion } from './rollout.js';
import { prepareRunFolder } from './run-folder.js';
import { RunLog } from './run-log.js';
import { setUpTrainer, type StageReporter, type TrainerParts } from './trainer-setup.js';

/** A reward component failed (threw, hung, gave no valid score) on every completion of the run's first step. */
export class GraderFailed extends Error {}

/**
 * GRPO with LoRA on one WebGPU device. Sampling and training share the model and the adapter
 * tensors in GPU memory (no weight sync); the reference policy of the KL term is the same network
 * with the adapters switched off. Every random choice is a function of (seed, step), so a run
 * resumed from a checkpoint continues exactly as if it had never stopped.
 */
export class GrpoTrainer {
  step = 0;
  /** Set (e.g. by Ctrl-C) to stop at the next checkpoint boundary after saving. */
  stopRequested = false;
  /** Told what the step under way is doing (a progress display); called after every decode step, so keep it cheap. */
  onProgress: ((status: string) => void) | null = null;
  readonly log: RunLog;
  readonly config: GrpoConfig;
  readonly loaded: LoadedModel;
  readonly lora: LoraAdapters;
  readonly optimizer: AdamW;
  readonly task: TaskData;
  readonly reward: RewardFunction;
  /** Micro-batch size and activation recomputation, chosen for --max-memory or a CPU adapter's available memory (or as given). */
  readonly memoryPlan: MemoryPlan;
  private readonly tritonRunner: TritonRunner;
  private readonly inputs: Record<string, string>;
  /** Where the sampling forwards leave the linears' outputs for the rollout's first optimizer step (--rollout-projections); null: recomputed. */
  private readonly projections: ProjectionStore | null;
  private readonly update: GrpoUpdate;
  private readonly history: Record<string, number>[];

  private constructor(
    readonly gpu: Gpu,
    parts: TrainerParts,
    private readonly releaseRunFolder: () => void,
  ) {
    ({ config: this.config, loaded: this.loaded, lora: this.lora, optimizer: this.optimizer, task: this.task, reward: this.reward } = parts);
    ({ memoryPlan: this.memoryPlan, tritonRunner: this.tritonRunner, inputs: this.inputs, projections: this.projections } = parts);
    this.update = new GrpoUpdate(gpu, this.config, this.loaded.model, this.lora, this.optimizer);
    this.log = new RunLog(this.config.outDir);
    this.step = parts.state?.step ?? 0;
    this.history = parts.state?.history ?? [];
    this.log.truncateAfter(this.step);
  }

  /**
   * `given` names the settings the user chose (the rest are defaults); by default every setting
   * counts as chosen. It decides what an --init-adapter may override (see adoptAdapterSettings).
   */
  static async create(
    gpu: Gpu,
    requested: GrpoConfig,
    root: string,
    given: ReadonlySet<string> = new Set(Object.keys(requested)),
    onStage: StageReporter = () => {},
  ): Promise<GrpoTrainer> {
    validateConfig(requested);
    const config = requested.initAdapter ? adoptAdapterSettings(requested, requested.initAdapter, given) : requested;
    const releaseRunFolder = prepareRunFolder(config.outDir, { resume: config.resume, overwrite: config.overwrite, flag: '--out-dir' });
    try {
      return new GrpoTrainer(gpu, await setUpTrainer(gpu, config, root, given, onStage), releaseRunFolder);
    } catch (error) {
      releaseRunFolder();
      throw error;
    }
  }

  /** The prompts of rollout r: consecutive rows of per-epoch seeded shuffles of the training set. */
  promptRows(rolloutIndex: number): PromptRow[] {
    return rolloutPrompts(this.task.train, this.config.promptsPerStep, this.config.seed, rolloutIndex);
  }

  private async sample(rows: readonly PromptRow[], numGenerations: number, temperature: number, seed: number, onStep?: (step: number, generated: number) => void): Promise<Completion[]> {
    const c = this.config;
    this.lora.training = false;
    this.projections?.reset();
    const eos = this.loaded.tokenizer.eosTokenId;
    return rollout(this.loaded.model, this.loaded.tokenizer, rows.map((r) => encodePrompt(this.loaded.tokenizer, r)), {
      numGenerations,
      generationBatchSize: c.generationBatchSize,
      maxNewTokens: c.maxNewTokens,
      temperature,
      topK: c.topK,
      topP: c.topP,
      minP: c.minP,
      seed,
      eosTokenIds: eos === undefined ? undefined : [eos],
      projections: this.projections ?? undefined,
      onStep,
    });
  }

  /** Tells onProgress what step `step` (1-based) is doing. */
  private status(step: number, what: string): void {
    this.onProgress?.(`step ${step}/${this.config.steps}: ${what}`);
  }

  private score(rows: readonly PromptRow[], completions: readonly Completion[]): Promise<CompletionScore[]> {
    return scoreCompletions(this.reward, rows, completions);
  }

  /** Runs steps until config.steps (or a stop request); calls onStep after each optimizer step. */
  async train(onStep: (metrics: StepMetrics) => void = () => {}, onStage: StageReporter = () => {}): Promise<void> {
    const c = this.config;
    if (this.step === 0 && !c.skipEvalAtStart) {
      onStage(`held-out evaluation before training (${Math.min(c.evalPrompts, this.task.eval.length)} prompts; the first dispatches compile the shaders)`);
      this.log.metrics(this.recordEval(await this.stopIfDiverged('held-out evaluation before training', this.evaluate())));
    }
    onStage('training');
    let firstStep = true;
    while (this.step < c.steps && !this.stopRequested) {
      const rolloutIndex = Math.floor(this.step / c.numIterations);
      const rows = this.promptRows(rolloutIndex);
      this.gpu.resetMemoryPeaks();
      const t0 = performance.now();
      const sampling = `sampling ${rows.length} prompts × ${c.numGenerations}`;
      this.status(this.step + 1, `${sampling}, prefill${firstStep ? ' (a kernel compiles on its first use)' : ''}`);
      const onToken = (step: number, generated: number) => this.status(this.step + 1, `${sampling}, ${generated} tokens, decode step ${step} of ≤ ${c.maxNewTokens}`);
      const completions = await this.stopIfDiverged(`step ${this.step + 1}: sampling`, this.sample(rows, c.numGenerations, c.temperature, c.seed * 7919 + rolloutIndex, onToken));
      // The phases' peaks apart: generation (KV cache) and training (activations) bound different settings.
      const generationPeaks = { live: this.gpu.pool.peakBytes, device: this.gpu.pool.peakAllocatedBytes };
      this.gpu.endPhase();
      this.gpu.pool.resetPeak();
      const t1 = performance.now();
      this.status(this.step + 1, `scoring ${completions.length} completions`);
      const scores = await this.score(rows, completions);
      const t2 = performance.now();
      const names = this.reward.componentNames;
      const failedShare = names.map((name) => scores.filter((s) => s.components[name].failed).length / scores.length);
      const adv = groupAdvantages(
        names.map((name) => ({ name, rewards: scores.map((s) => (s.components[name].counted ? s.components[name].score : 0)) })),
        { numGenerations: c.numGenerations, scaleRewards: c.scaleRewards, rewardWeights: names.map((n) => scores[0].components[n].weight) },
      );
      const sequences: SequenceInput[] = completions.map((comp) => ({
        promptIds: comp.promptIds,
        completionIds: comp.completionIds,
        masked: c.maskTruncatedCompletions && comp.finishReason === 'length',
        ...(this.projections && comp.projectionSlots && { projections: { store: this.projections, slots: comp.projectionSlots } }),
      }));
      const cached = await this.update.cachedLogprobs(sequences);
      const generationMetrics = {
        ...adv.metrics,
        'completions/mean_length': mean(completions.map((x) => x.completionIds.length)),
        'completions/min_length': Math.min(...completions.map((x) => x.completionIds.length)),
        'completions/max_length': Math.max(...completions.map((x) => x.completionIds.length)),
        'completions/clipped_ratio': completions.filter((x) => x.finishReason === 'length').length / completions.length,
        'time/generation_s': (t1 - t0) / 1000,
        'time/reward_s': (t2 - t1) / 1000,
        'tokens_per_second/generation': completions.reduce((n, x) => n + x.completionIds.length, 0) / ((t1 - t0) / 1000),
        ...Object.fromEntries(names.map((name, i) => [`rewards/${name}/failed`, failedShare[i]])),
      };
      this.log.completions(
        completions.slice(0, c.logCompletions).map((comp, i) => ({ step: this.step + 1, ...scoredCompletion(rows[comp.promptIndex], comp, scores[i]), advantage: adv.advantages[i] })),
      );
      // A grader that fails on every completion from the start is misconfigured: stop before training on its zeros.
      const broken = names.filter((_, i) => failedShare[i] === 1);
      if (firstStep && broken.length) {
        throw new GraderFailed(
          `step ${this.step + 1}: reward component${broken.length > 1 ? 's' : ''} ${broken.map((n) => `'${n}' (${scores[0].components[n].reason})`).join(', ')} failed on every completion; ` +
            `stopping before training on zero rewards (the completions and reasons are in ${this.log.completionsPath})`,
        );
      }
      firstStep = false;
      try {
        for (let iteration = 0; iteration < c.numIterations && this.step < c.steps; iteration++) {
          // Only the first step trains the weights that sampled: later ones compute their projections.
          const metrics = await this.optimizerStep(iteration === 0 ? sequences : sequences.map(({ projections, ...rest }) => rest), adv.advantages, cached);
          this.projections?.invalidate();
          this.step++;
          const row: StepMetrics = {
            step: this.step,
            ...metrics,
            ...(iteration === 0 ? generationMetrics : {}),
            ...this.memoryMetrics(generationPeaks),
          };
          if (this.step % c.evalEvery === 0 || this.step === c.steps) {
            this.status(this.step, `held-out evaluation (${Math.min(c.evalPrompts, this.task.eval.length)} prompts)`);
            Object.assign(row, this.recordEval(await this.stopIfDiverged(`step ${this.step}: held-out evaluation`, this.evaluate())));
          }
          this.log.metrics(row);
          onStep(row);
        }
      } finally {
        for (const t of Object.values(cached).flat()) t?.dispose();
      }
      this.gpu.endPhase();
      if (this.step % c.saveEvery === 0 || this.step === c.steps || this.stopRequested) {
        this.status(this.step, 'saving a checkpoint');
        await this.save();
      }
    }
    this.log.plot();
  }

  private optimizerStep(sequences: readonly SequenceInput[], advantages: Float64Array, cached: CachedLogprobs): Promise<StepMetrics> {
    return this.update.step(sequences, advantages, cached, this.step, {
      divergedAdvice: () => this.divergedAdvice(),
      onMicroBatch: (done, count) => this.status(this.step + 1, `forward/backward, ${done} of ${count} micro-batches`),
    });
  }

  /** One optimizer step on a given rollout, without sampling or scoring it (benchmarks of the training time run this). */
  async trainOn(sequences: readonly SequenceInput[], advantages: Float64Array): Promise<StepMetrics> {
    const cached = await this.update.cachedLogprobs(sequences);
    try {
      return await this.optimizerStep(sequences, advantages, cached);
    } finally {
      for (const t of Object.values(cached).flat()) t?.dispose();
    }
  }

  private divergedAdvice(): string {
    const lastGood = latestCheckpoint(this.config.outDir);
    return (
      (lastGood ? `the last good checkpoint is ${lastGood}` : 'no checkpoint was saved before it') +
      ' (lower --learning-rate or --max-grad-norm; a loss or gradient that is not finite at the first step points at the model’s weights)'
    );
  }

  /**
   * Generation that met non-finite logits stops the run as a diverged step does (the loss of
   * left-out micro-batches, which would have shown it, is never computed).
   */
  private async stopIfDiverged<T>(when: string, work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (error) {
      if (!(error instanceof NonFiniteLogits)) throw error;
      const why = this.step === 0 ? 'the starting model (its weights, or --init-adapter) is broken' : `training diverged; ${this.divergedAdvice()}`;
      throw new TrainingDiverged(`${when}: ${error.message} — ${why}`);
    }
  }

  /** Greedy answers to the held-out prompts: mean reward and pass@1 (full marks). */
  evaluate(): Promise<EvalResult> {
    this.lora.training = false;
    return evaluateHeldOut(this.loaded, this.task.eval.slice(0, this.config.evalPrompts), this.reward, this.config.maxNewTokens);
  }

  private recordEval(result: EvalResult): StepMetrics {
    const row = evalMetrics(this.step, result);
    this.log.evalCompletions(this.step, result.completions);
    this.history.push(row);
    return row;
  }

  async save(): Promise<string> {
    const state: TrainerState = {
      step: this.step,
      seed: this.config.seed,
      dropoutStream: this.lora.dropoutStream,
      matmulVariants: matmulVariantChoices(this.gpu),
      config: { ...this.config },
      inputs: this.inputs,
      history: this.history,
    };
    return saveCheckpoint(this.config.outDir, state, await this.optimizer.exportState(), (dir) => this.lora.save(dir, this.config.model));
  }

  /** Device bytes by kind now, the step's peaks (and those of its generation) and the process's resident set, in MiB. */
  memoryMetrics(generationPeaks = { live: 0, device: 0 }): StepMetrics {
    const m = memoryBreakdown(this.gpu, {
      frozen: this.loaded.model.parameters.values(),
      trainable: [...this.lora.parameters().flatMap((p) => (p.grad ? [p, p.grad] : [p])), ...this.optimizer.stateTensors()],
    });
    const MiB = 2 ** 20;
    return {
      'memory/peak_gpu_mib': Math.max(generationPeaks.live, this.gpu.pool.peakBytes) / MiB,
      'memory/peak_generation_mib': generationPeaks.live / MiB,
      'memory/peak_training_mib': this.gpu.pool.peakBytes / MiB,
      'memory/peak_device_mib': Math.max(generationPeaks.device, this.gpu.pool.peakAllocatedBytes) / MiB,
      'memory/peak_staging_mib': this.gpu.commands.peakStagingBytes / MiB,
      'memory/frozen_mib': m.frozenBytes / MiB,
      'memory/trainable_mib': m.trainableBytes / MiB,
      'memory/pool_cache_mib': m.poolCacheBytes / MiB,
      'memory/live_other_mib': m.liveOtherBytes / MiB,
      'memory/device_mib': m.allocatedBytes / MiB,
      'memory/rss_mib': m.rssBytes / MiB,
      'memory/max_rss_mib': maxRssBytes() / MiB,
      'memory/mappings': processMappings(),
    };
  }

  async close(): Promise<void> {
    this.projections?.dispose();
    try {
      await this.reward.close();
      await this.tritonRunner.close();
    } finally {
      this.releaseRunFolder();
    }
  }
}
