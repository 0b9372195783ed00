import { noGrad } from '../autograd/grad-node.js';
import type { PromptRow } from '../data/jsonl.js';
import type { Gpu } from '../gpu/gpu.js';
import { maxRssBytes, memoryBreakdown, processMappings } from '../gpu/memory.js';
import type { Tensor } from '../gpu/tensor.js';
import { checkGenerationBatch } from '../generate/batch-limit.js';
import { ModelTextGenerator } from '../generate/text-generator.js';
import { NonFiniteLogits } from '../generate/sampler.js';
import { loadModel, type LoadedModel } from '../model/load.js';
import { ProjectionStore } from '../model/projection-store.js';
import { attachLora, loadLora, type LoraAdapters } from '../nn/lora.js';
import { matmulVariantChoices, restoreMatmulVariantChoices, tuneMatmul } from '../ops/matmul-variants.js';
import { maskedMean } from '../ops/cross-entropy.js';
import { view } from '../ops/layout.js';
import { AdamW } from '../optim/adamw.js';
import type { LrSchedule } from '../optim/lr-schedule.js';
import { buildReward, loadRewardConfig } from '../rewards/config.js';
import { seededRandom } from '../data/random.js';
import { TritonRunner } from '../rewards/triton-runner.js';
import type { CompletionScore, RewardFunction } from '../rewards/types.js';
import { groupAdvantages } from './advantages.js';
import { latestCheckpoint, loadCheckpoint, saveCheckpoint, type TrainerState } from './checkpoint.js';
import { completionLogprobs, modelForwards, sequenceBatch, sharedPromptBatch, type SequenceBatch, type SequenceInput } from '../train/completion-logprobs.js';
import { encodePrompt, evalMetrics, evaluateHeldOut, scoreCompletions, scoredCompletion, type EvalResult } from './evaluate.js';
import { resolveBaseDtype, reusesRolloutProjections, validateConfig, type GrpoConfig } from './grpo-config.js';
import { grpoLoss, namedGrpoMetrics } from './grpo-loss.js';
import { cpuAdapterRoom, describeEstimate, formatGiB, loadedModelShape, planMemory, type MemoryPlan } from './memory-plan.js';
import { rollout, rolloutLogitRows, rolloutProjectionRows, type Completion } from './rollout.js';
import { prepareRunFolder } from './run-folder.js';
import { adoptAdapterSettings } from './init-adapter.js';
import { checkChatTemplate, fitTaskToContext } from './preflight.js';
import { RunLog } from './run-log.js';
import { checkSameRun, inputFingerprints } from './same-run.js';
import { loadTask, type TaskData } from '../tasks/load.js';
import { splitMicroBatches, trainingStep, TrainingDiverged } from '../train/step.js';

export type StepMetrics = Record<string, number>;

/** Told the name of each start-up stage as it begins, so a long start shows where it is. */
export type StageReporter = (stage: string) => void;

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
  private readonly history: Record<string, number>[];

  private constructor(
    readonly gpu: Gpu,
    readonly config: GrpoConfig,
    readonly loaded: LoadedModel,
    readonly lora: LoraAdapters,
    readonly optimizer: AdamW,
    readonly task: TaskData,
    readonly reward: RewardFunction,
    private readonly tritonRunner: TritonRunner,
    state: TrainerState | null,
    private readonly inputs: Record<string, string>,
    private readonly releaseRunFolder: () => void,
    /** Micro-batch size and activation recomputation, chosen for --max-memory or a CPU adapter's available memory (or as given). */
    readonly memoryPlan: MemoryPlan,
    /** Where the sampling forwards leave the linears' outputs for the rollout's first optimizer step (--rollout-projections); null: recomputed. */
    private readonly projections: ProjectionStore | null,
  ) {
    this.log = new RunLog(config.outDir);
    this.step = state?.step ?? 0;
    this.history = state?.history ?? [];
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
      return await GrpoTrainer.load(gpu, config, root, given, releaseRunFolder, onStage);
    } catch (error) {
      releaseRunFolder();
      throw error;
    }
  }

  private static async load(gpu: Gpu, config: GrpoConfig, root: string, given: ReadonlySet<string>, releaseRunFolder: () => void, onStage: StageReporter): Promise<GrpoTrainer> {
    const checkpoint = config.resume ? latestCheckpoint(config.outDir) : null;
    if (config.resume && !checkpoint) throw new Error(`--resume: no checkpoint in ${config.outDir} (a run there stopped before its first save); start afresh with --overwrite`);
    const saved = checkpoint ? loadCheckpoint(checkpoint) : null;
    // A resumed run keeps the micro-batch it ran with (the one its plan chose, written into its config).
    const microBatchGiven = given.has('microBatchSize') || saved !== null;
    if (saved && !given.has('microBatchSize') && typeof saved.state.config.microBatchSize === 'number') config = { ...config, microBatchSize: saved.state.config.microBatchSize };
    const inputs = inputFingerprints(config);
    if (saved) checkSameRun(saved.state, config, inputs);
    const listedTask = loadTask(config.task, root, config.evalPrompts, config.evalData);
    const tritonRunner = new TritonRunner({ repoRoot: root });
    const rewardSource = config.rewardConfig ?? listedTask.rewardConfig;
    if (!rewardSource) throw new Error(`task ${config.task} has no built-in reward: pass --reward-config`);
    const textGenerator = config.judgeModel ? new ModelTextGenerator(loadModel(gpu, config.judgeModel)) : undefined;
    const reward =
      typeof rewardSource === 'string'
        ? loadRewardConfig(rewardSource, { tritonRunner, textGenerator })
        : buildReward(rewardSource, { baseDir: root, tritonRunner, textGenerator });
    onStage('probing the reward graders');
    await reward.check({ prompt: listedTask.train[0].prompt, completion: '', example: listedTask.train[0] });
    onStage(`loading model ${config.model}`);
    const loaded = loadModel(gpu, config.model, { dtype: resolveBaseDtype(config.baseDtype, gpu) });
    checkChatTemplate(loaded.tokenizer, config.model, listedTask);
    onStage(`checking that ${listedTask.train.length + listedTask.eval.length} data rows fit the context`);
    const { task, longestPrompt } = fitTaskToContext(listedTask, loaded.tokenizer, {
      contextLength: loaded.model.config.max_position_embeddings,
      maxNewTokens: config.maxNewTokens,
      skip: config.skipLongRows,
      warn: (message) => console.error(message),
    });
    checkGenerationBatch('--generation-batch-size', config.generationBatchSize, loaded.model.config, gpu.device.limits, longestPrompt, config.maxNewTokens);
    if (saved) restoreMatmulVariantChoices(gpu, saved.state.matmulVariants);
    else {
      onStage('choosing matmul kernels for this adapter (cached after the first run)');
      await tuneMatmul(gpu);
    }
    const adapterDir = checkpoint ?? config.initAdapter;
    const lora = adapterDir
      ? loadLora(loaded.model, adapterDir, { seed: config.seed, dropout: config.loraDropout })
      : attachLora(loaded.model, {
          rank: config.loraRank,
          alpha: config.loraAlpha,
          dropout: config.loraDropout,
          targetModules: config.loraTargets,
          useRslora: config.useRslora,
          seed: config.seed,
        });
    const optimizer = new AdamW(lora.parameters(), {
      lr: config.learningRate,
      betas: config.adamBetas,
      weightDecay: config.weightDecay,
    });
    if (saved) {
      optimizer.importState(saved.optimizer);
      lora.dropoutStream = saved.state.dropoutStream;
    }
    const sequencesPerStep = config.promptsPerStep * config.numGenerations;
    // The most rows a rollout appends: every prompt as long as the longest.
    const longestPrompts = Array.from({ length: config.promptsPerStep }, (_, i) => Array<number>(longestPrompt).fill(i));
    const projectionRows = reusesRolloutProjections(config) ? rolloutProjectionRows(longestPrompts, config) : 0;
    // The sampling's logits are kept with them where training reads the packed layout (each of its
    // rows then predicts a completion token, whose logits the sampling computed).
    const vocab = loaded.model.config.vocab_size;
    const logitRows = projectionRows && config.promptForward === 'shared' ? rolloutLogitRows(longestPrompts, config) : 0;
    const logitBlockRows = ProjectionStore.logitBlockRows(gpu, vocab);
    const room = !microBatchGiven && config.maxMemory === undefined && gpu.isCpuAdapter ? cpuAdapterRoom() : undefined;
    const memoryPlan = planMemory(
      loadedModelShape(loaded.model, lora),
      {
        promptTokens: longestPrompt,
        maxNewTokens: config.maxNewTokens,
        numGenerations: config.numGenerations,
        generationBatchSize: config.generationBatchSize,
        microBatchSize: config.microBatchSize,
        sharedPrompts: config.promptForward === 'shared',
        poolCacheCap: gpu.pool.maxCachedBytes,
        projectionRows,
        logitRows,
        logitBlockRows,
      },
      {
        maxBytes: config.maxMemory === undefined ? undefined : config.maxMemory * 2 ** 30,
        roomBytes: room,
        recompute: config.recompute,
        microBatchGiven,
        sequencesPerStep,
      },
    );
    loaded.model.recomputeLayers = memoryPlan.recompute;
    gpu.pool.maxCachedBytes = memoryPlan.poolCacheCap;
    config = { ...config, microBatchSize: memoryPlan.microBatchSize };
    const why = room !== undefined ? ` (the largest of the step's ${sequencesPerStep} sequences whose estimate fits half the memory available, ${formatGiB(room)}; --micro-batch-size to choose)` : '';
    onStage(`memory: micro-batch ${memoryPlan.microBatchSize}${why}, recomputation ${memoryPlan.recompute ? 'on' : 'off'}, pool cache ≤ ${Number.isFinite(memoryPlan.poolCacheCap) ? formatGiB(memoryPlan.poolCacheCap) : 'uncapped'}; estimated peak ${describeEstimate(memoryPlan.estimate)}`);
    const linears = loaded.model.linears();
    const unfit = projectionRows ? linears.find((l) => !ProjectionStore.fits(gpu, l.outFeatures, projectionRows)) : undefined;
    if (unfit) {
      throw new Error(`--rollout-projections ${config.rolloutProjections}: a rollout's ${projectionRows} rows of ${unfit.name}'s ${unfit.outFeatures} outputs exceed one storage binding of this adapter; use --rollout-projections recompute, or fewer --prompts-per-step, --num-generations or --max-new-tokens`);
    }
    const projections = projectionRows ? new ProjectionStore(gpu, linears, projectionRows, logitRows ? { vocab, rows: logitRows } : undefined) : null;
    return new GrpoTrainer(gpu, config, loaded, lora, optimizer, task, reward, tritonRunner, saved?.state ?? null, inputs, releaseRunFolder, memoryPlan, projections);
  }

  private get schedule(): LrSchedule {
    const c = this.config;
    if (c.lrSchedule === 'constant') return { kind: 'constant', lr: c.learningRate, warmupSteps: c.warmupSteps };
    return { kind: c.lrSchedule, lr: c.learningRate, warmupSteps: c.warmupSteps, totalSteps: c.steps };
  }

  /** The prompts of rollout r: consecutive rows of per-epoch seeded shuffles of the training set. */
  promptRows(rolloutIndex: number): PromptRow[] {
    const rows = this.task.train;
    const per = this.config.promptsPerStep;
    const orders = new Map<number, number[]>();
    const out: PromptRow[] = [];
    for (let i = rolloutIndex * per; i < (rolloutIndex + 1) * per; i++) {
      const epoch = Math.floor(i / rows.length);
      if (!orders.has(epoch)) orders.set(epoch, epochOrder(rows.length, this.config.seed, epoch));
      out.push(rows[orders.get(epoch)![i % rows.length]]);
    }
    return out;
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
      const cached = await this.cachedLogprobs(sequences);
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

  /** One optimizer step on a given rollout, without sampling or scoring it (benchmarks of the training time run this). */
  async trainOn(sequences: readonly SequenceInput[], advantages: Float64Array): Promise<StepMetrics> {
    const cached = await this.cachedLogprobs(sequences);
    try {
      return await this.optimizerStep(sequences, advantages, cached);
    } finally {
      for (const t of Object.values(cached).flat()) t?.dispose();
    }
  }

  /** Old (num_iterations > 1) and reference (beta > 0) log-probs, per micro-batch, before any update. */
  private async cachedLogprobs(sequences: readonly SequenceInput[]) {
    const c = this.config;
    const old: Tensor[] = [];
    const ref: Tensor[] = [];
    if (c.numIterations === 1 && c.beta === 0) return { old, ref };
    this.lora.training = false;
    for (const micro of this.microBatches(sequences)) {
      noGrad(() =>
        this.gpu.tidy(() => {
          const batch = this.layout(micro);
          if (c.numIterations > 1) old.push(this.gpu.keep(completionLogprobs(this.loaded.model, batch).logprobs));
          if (c.beta > 0) {
            this.lora.enabled = false;
            try {
              // The reference is the base alone: the sampling forwards' outputs carried the adapters.
              ref.push(this.gpu.keep(completionLogprobs(this.loaded.model, { ...batch, projections: undefined }).logprobs));
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
    return splitMicroBatches(items, this.memoryPlan.microBatchSize);
  }

  /** One trainingStep over the micro-batches of the rollout with GRPO's loss; its metrics under TRL's names. */
  private async optimizerStep(
    sequences: readonly SequenceInput[],
    advantages: Float64Array,
    cached: { old: Tensor[]; ref: Tensor[] },
  ): Promise<StepMetrics> {
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
    const step = await trainingStep(gpu, {
      optimizer: this.optimizer,
      microBatches: micro,
      maxGradNorm: c.maxGradNorm,
      schedule: this.schedule,
      step: this.step,
      loss: (batchSequences, m) => {
        const first = m * this.memoryPlan.microBatchSize;
        if (batchSequences.every((s, i) => this.hasZeroGradient(s, rowAdvantages[first + i]))) {
          this.lora.skipForwards(modelForwards(batchSequences, c.promptForward === 'shared'));
          return null;
        }
        const batch = this.layout(batchSequences);
        computed.tokens += batch.computedTokens;
        computed.positions += batch.computedPositions;
        const { logprobs, entropy } = completionLogprobs(this.loaded.model, batch);
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
      divergedAdvice: () => this.divergedAdvice(),
      onMicroBatch: (done, count) => this.status(this.step + 1, `forward/backward, ${done} of ${count} micro-batches`),
    });
    const end = performance.now();
    // Entropy and the loss's metrics describe the micro-batches that ran (none: left out of the row).
    let entropy = 0;
    let entropyTokens = 0;
    step.microBatches.forEach(({ skipped, values }, m) => {
      const tokens = unmaskedTokens(micro[m]);
      if (!skipped && tokens > 0) {
        entropy += values.entropy[0] * tokens;
        entropyTokens += tokens;
      }
    });
    const ran = step.microBatches.filter(({ skipped }) => !skipped);
    const lossMetrics = ran.map(({ values }) => namedGrpoMetrics(values.metrics, { beta: c.beta, lossType: c.lossType }));
    const merged: StepMetrics = {};
    for (const key of Object.keys(lossMetrics[0] ?? {})) {
      const xs = lossMetrics.map((m) => m[key]);
      merged[key] = key.endsWith('_min') ? Math.min(...xs) : key.endsWith('_max') ? Math.max(...xs) : mean(xs);
    }
    return {
      grad_norm: step.gradNorm,
      loss: step.loss,
      ...(entropyTokens > 0 ? { entropy: entropy / entropyTokens } : {}),
      ...merged,
      'completions/skipped_in_training': sequences.length - rows.length + micro.reduce((n, m, i) => n + (step.microBatches[i].skipped ? m.length : 0), 0),
      learning_rate: step.learningRate,
      'time/train_s': step.trainSeconds,
      'time/optimizer_s': step.optimizerSeconds,
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
   * stays (micro-batches of such rows alone are still left out whole in optimizerStep; the loss
   * types that normalise per micro-batch depend on how rows are split).
   */
  private rowsToTrain(sequences: readonly SequenceInput[], advantages: Float64Array): number[] | null {
    const c = this.config;
    if (c.lossType !== 'dapo' || c.numIterations !== 1 || c.loraDropout !== 0) return null;
    const kept = sequences.flatMap((s, i) => (this.hasZeroGradient(s, advantages[i]) ? [] : [i]));
    return kept.length > 0 && kept.length < sequences.length ? kept : null;
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

function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

/** A seeded permutation of 0…n−1 for one epoch. */
function epochOrder(n: number, seed: number, epoch: number): number[] {
  const random = seededRandom(seed * 1_000_003 + epoch);
  const order = [...Array(n).keys()];
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}
