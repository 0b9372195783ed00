// The main job: GRPO with LoRA adapters on WebGPU.
//   node train.js --model small --lora-rank 8 [--task arithmetic] [--steps 30] [--config run.json] …
// `node train.js --help` lists every flag.
import { Gpu } from '../gpu/gpu.js';
import { repositoryRoot } from '../io/repository-root.js';
import { latestCheckpoint } from '../rl/checkpoint.js';
import { DEFAULT_CONFIG, GRPO_SETTINGS, validateConfig, type GrpoConfig } from '../rl/grpo-config.js';
import { GraderFailed, GrpoTrainer } from '../rl/grpo-trainer.js';
import type { StepMetrics } from '../rl/grpo-update.js';
import { TrainingDiverged } from '../train/step.js';
import { parseCommand, refuseOnError } from './options.js';
import { ProgressBar, StageLog } from './progress.js';

const HELP: Record<keyof GrpoConfig, string> = {
  model: 'registered model (small, tiny) or a checkpoint path',
  task: 'built-in task (quick-arithmetic, arithmetic, countdown, triton, tiny-arithmetic) or a JSONL file of {"prompt", "system"?, …} rows',
  rewardConfig: 'reward config JSON (graders, weights, gates); default: the task’s own',
  judgeModel: 'local model (name or path) that llm_judge graders in the reward config ask',
  evalData: 'held-out prompts (JSONL); default: the task’s held-out rows',
  initAdapter: 'start from this PEFT adapter folder (e.g. from sft.js) instead of fresh LoRA weights',
  loraRank: 'LoRA rank r',
  loraAlpha: 'LoRA alpha (scale alpha/r)',
  loraDropout: 'dropout on the adapters’ input while training',
  loraTargets: 'comma-separated module names to adapt',
  useRslora: 'rank-stabilised scaling alpha/√r',
  baseDtype: 'storage of the frozen base matrices: f32, f16, or auto (f16 on a CPU adapter, f32 on a GPU)',
  numGenerations: 'completions per prompt (G)',
  promptsPerStep: 'prompts per step (a step trains on prompts × G completions)',
  generationBatchSize: 'sequences generated together',
  microBatchSize: 'sequences per forward/backward (gradient accumulation); default on a CPU adapter: the largest, up to the step’s sequences, whose estimated memory fits half the memory available (4 on a GPU, or as --max-memory picks); a resumed run keeps its own',
  promptForward: 'shared: a prompt runs once per micro-batch and its completions attend to it (same gradients, less work; with LoRA dropout the group shares the prompt’s mask); repeated: once per completion',
  zeroAdvantageCompletions: 'skip: with β = 0, no forward/backward for completions with advantage 0 (their gradient is exactly 0): with dapo, one iteration and no LoRA dropout they leave the step (same gradient up to float rounding), otherwise micro-batches made only of them are left out (same parameters bit for bit); train: compute them anyway',
  rolloutProjections: 'reuse: the sampling forwards keep every decoder linear’s output and the first optimizer step on the rollout reads them instead of recomputing the frozen base’s products (same gradients up to float rounding; memory: those outputs); recompute: compute them again; auto: reuse unless LoRA dropout, --max-memory or --recompute on is set',
  maxMemory: 'GiB a step may use (device memory; on a CPU adapter the process adds ~0.3 GiB): picks --micro-batch-size when not given and turns on --recompute when needed, or refuses',
  recompute: 'auto, on or off: recompute each decoder layer in the backward instead of keeping its activations (auto: when --max-memory needs it)',
  maxNewTokens: 'maximum completion length',
  temperature: 'sampling temperature',
  topK: 'top-k sampling (0 = off)',
  topP: 'nucleus sampling (1 = off)',
  minP: 'min-p sampling (0 = off)',
  beta: 'KL coefficient β (0 skips the reference forward)',
  klEstimator: 'k1, k2 or k3 (Schulman’s estimators; TRL uses k3)',
  epsilon: 'clip range ε (lower side)',
  epsilonHigh: 'upper clip (DAPO clip-higher); default ε',
  delta: 'two-sided cap on the ratio (off by default)',
  lossType: 'grpo, bnpo, dr_grpo or dapo (TRL’s meanings)',
  importanceSampling: 'token (GRPO) or sequence (GSPO) ratios',
  scaleRewards: 'divide advantages by the group std, the batch std, or none',
  maskTruncatedCompletions: 'leave completions cut at max-new-tokens out of the loss',
  numIterations: 'optimizer steps per rollout (reuses it with cached old log-probs)',
  learningRate: 'peak learning rate',
  lrSchedule: 'constant, cosine or linear (after warmup)',
  warmupSteps: 'linear warmup steps',
  weightDecay: 'AdamW weight decay',
  adamBetas: 'AdamW betas, e.g. 0.9,0.99',
  maxGradNorm: 'clip the global gradient norm to this',
  steps: 'optimizer steps to train (0: only evaluate the starting model on the held-out prompts)',
  evalEvery: 'evaluate held-out prompts every N steps',
  evalPrompts: 'held-out prompts per evaluation',
  skipEvalAtStart: 'leave out the evaluation before the first step (the starting model’s score, when another run has it)',
  saveEvery: 'checkpoint every N steps (and at the end)',
  logCompletions: 'completions per step written to completions.jsonl',
  outDir: 'output folder (metrics.jsonl, completions.jsonl, curves.svg, checkpoints)',
  seed: 'seed of data order, sampling, LoRA init and dropout',
  resume: 'continue from the newest checkpoint in --out-dir, exactly',
  overwrite: 'delete the run --out-dir holds (as a whole) and start afresh',
  skipLongRows: 'leave out data rows whose prompt and --max-new-tokens exceed the model’s context (default: refuse to start)',
};

const { values: config, given } = parseCommand<GrpoConfig>({
  usage: 'usage: node train.js [--config run.json] [--flag value …]',
  schema: GRPO_SETTINGS,
  defaults: DEFAULT_CONFIG,
  help: HELP,
  check: validateConfig,
});

// SIGTERM (docker stop, kill, job schedulers) is treated like Ctrl-C: finish the step, save, exit.
// Until the trainer exists there is nothing to save; a second signal quits at once. A signal sent
// to the whole job (Ctrl-C in a terminal, timeout(1), systemd's stop) also reaches whoever forwards it
// here (train.js's launcher, npm, the experiment runner): copies arriving together count once.
const SIGNAL_NUMBERS = { SIGINT: 2, SIGTERM: 15 } as const;
const SAME_SIGNAL_MS = 250;
let stopSignal: keyof typeof SIGNAL_NUMBERS | undefined;
let stopSignalAt = 0;
let trainer: GrpoTrainer | undefined;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopSignal && Date.now() - stopSignalAt < SAME_SIGNAL_MS) return;
    if (stopSignal) process.exit(128 + SIGNAL_NUMBERS[signal]);
    stopSignal = signal;
    stopSignalAt = Date.now();
    if (trainer) trainer.stopRequested = true;
    console.error(`\n${signal}: stopping after this step to save a checkpoint (${signal === 'SIGINT' ? 'Ctrl-C' : 'a signal'} again quits without saving)`);
  });
}

const startup = new StageLog();
startup.stage('opening the WebGPU adapter');
const gpu = await Gpu.create();
console.error(`adapter: ${gpu.adapterName}`);
trainer = await refuseOnError(() => GrpoTrainer.create(gpu, config, repositoryRoot(), given, startup.stage));
trainer.stopRequested = stopSignal !== undefined;
console.error(`model ${config.model}, task ${trainer.task.name} (${trainer.task.train.length} train / ${trainer.task.eval.length} held-out prompts), LoRA r=${trainer.config.loraRank} alpha ${trainer.config.loraAlpha}${config.initAdapter ? ` from ${config.initAdapter}` : ''} on ${trainer.lora.modules.length} modules, output ${config.outDir}${trainer.step ? `, resuming at step ${trainer.step}` : ''}`);

const progress = new ProgressBar(config.steps, 'GRPO ', 1, trainer.step);
trainer.onProgress = (status) => progress.status(status);
const show = (m: StepMetrics): Record<string, number | string> => {
  const shown: Record<string, number | string> = { reward: m.reward, kl: m.kl ?? 0, loss: m.loss };
  for (const [k, v] of Object.entries(m)) if (/^rewards\/.+\/mean$/.test(k)) shown[k.slice(8, -5)] = v;
  shown.clip = m['clip_ratio/region_mean'] ?? 0;
  shown.len = m['completions/mean_length'];
  shown['tok/s'] = m['tokens_per_second/generation'];
  if (m['eval/reward'] !== undefined) shown.eval = m['eval/reward'];
  return shown;
};
try {
  await trainer.train((m) => {
    for (const [key, share] of Object.entries(m)) {
      if (share === 1 && /^rewards\/.+\/failed$/.test(key)) console.error(`\nstep ${m.step}: the '${key.slice(8, -7)}' grader failed on every completion (reasons in completions.jsonl)`);
    }
    if (m.frac_reward_zero_std === 1) console.error(`\nstep ${m.step}: every group's completions got the same reward — no learning signal this step (loss 0 is expected${m['completions/skipped_in_training'] ? '; its forward and backward were left out' : ''})`);
    progress.update(m.step, show(m));
  }, startup.stage);
  if (stopSignal && trainer.step < config.steps) {
    console.error(`stopped by ${stopSignal} after step ${trainer.step}; ${newestCheckpoint()}`);
    process.exitCode = 128 + SIGNAL_NUMBERS[stopSignal];
  } else console.error(`done: ${trainer.step} steps; metrics in ${trainer.log.metricsPath}, curves in ${trainer.log.plotPath}`);
} catch (error) {
  if (error instanceof TrainingDiverged || error instanceof GraderFailed) {
    console.error(`\n${error.message}`);
    process.exitCode = error instanceof TrainingDiverged ? 2 : 3;
  } else if ((error as NodeJS.ErrnoException).code === 'ENOSPC') {
    console.error(`\n${(error as Error).message}: the disk is full; ${newestCheckpoint()}`);
    process.exitCode = 1;
  } else throw error;
} finally {
  try {
    trainer.log.plot();
  } catch (error) {
    console.error(`could not redraw ${trainer.log.plotPath}: ${(error as Error).message}`);
  }
  await trainer.close();
  gpu.destroy();
}

function newestCheckpoint(): string {
  const newest = latestCheckpoint(config.outDir);
  return newest ? `newest checkpoint ${newest}; continue with --resume` : 'no checkpoint was saved yet';
}
