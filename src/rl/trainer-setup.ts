import type { Gpu } from '../gpu/gpu.js';
import { checkGenerationBatch } from '../generate/batch-limit.js';
import { ModelTextGenerator } from '../generate/text-generator.js';
import { loadModel, type LoadedModel } from '../model/load.js';
import { ProjectionStore } from '../model/projection-store.js';
import { attachLora, loadLora, type LoraAdapters } from '../nn/lora.js';
import { restoreMatmulVariantChoices, tuneMatmul } from '../ops/matmul-variants.js';
import { AdamW } from '../optim/adamw.js';
import { buildReward, loadRewardConfig } from '../rewards/config.js';
import { TritonRunner } from '../rewards/triton-runner.js';
import type { RewardFunction } from '../rewards/types.js';
import { loadTask, type TaskData } from '../tasks/load.js';
import { latestCheckpoint, loadCheckpoint, type TrainerState } from './checkpoint.js';
import { resolveBaseDtype, reusesRolloutProjections, type GrpoConfig } from './grpo-config.js';
import { cpuAdapterRoom, describeEstimate, formatGiB, loadedModelShape, planMemory, type MemoryPlan } from './memory-plan.js';
import { checkChatTemplate, fitTaskToContext } from './preflight.js';
import { rolloutLogitRows, rolloutProjectionRows } from './rollout.js';
import { checkSameRun, inputFingerprints } from './same-run.js';

/** Told the name of each start-up stage as it begins, so a long start shows where it is. */
export type StageReporter = (stage: string) => void;

/** What a GRPO run trains with, loaded and checked before its first step. */
export interface TrainerParts {
  /** The run's settings, with the micro-batch its memory plan chose (and a resumed run's own). */
  config: GrpoConfig;
  loaded: LoadedModel;
  lora: LoraAdapters;
  optimizer: AdamW;
  task: TaskData;
  reward: RewardFunction;
  tritonRunner: TritonRunner;
  /** The checkpoint's state when resuming, else null. */
  state: TrainerState | null;
  /** Fingerprints of the run's input files (a resumed run must see the same). */
  inputs: Record<string, string>;
  /** Micro-batch size and activation recomputation, chosen for --max-memory or a CPU adapter's available memory (or as given). */
  memoryPlan: MemoryPlan;
  /** Where the sampling forwards leave the linears' outputs for the rollout's first optimizer step (--rollout-projections); null: recomputed. */
  projections: ProjectionStore | null;
}

/**
 * Loads (or, with --resume, restores) everything a run trains with, checking what can be checked
 * before the first step: the run's inputs against its checkpoint, the graders, the data against
 * the context, the generation batch against the adapter, and the memory plan. `given` names the
 * settings the user chose (a resumed run keeps its micro-batch unless one is given).
 */
export async function setUpTrainer(gpu: Gpu, config: GrpoConfig, root: string, given: ReadonlySet<string>, onStage: StageReporter): Promise<TrainerParts> {
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
  return { config, loaded, lora, optimizer, task, reward, tritonRunner, state: saved?.state ?? null, inputs, memoryPlan, projections };
}
