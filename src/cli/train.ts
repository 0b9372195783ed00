// The main job: GRPO with LoRA adapters on WebGPU.
//   node train.js --model small --lora-rank 8 [--task arithmetic] [--steps 30] [--config run.json] …
// `node train.js --help` lists every flag.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Gpu } from '../gpu/gpu.js';
import { repositoryRoot } from '../io/repository-root.js';
import { DEFAULT_CONFIG, kebab, type GrpoConfig } from '../rl/grpo-config.js';
import { GrpoTrainer, TrainingDiverged, type StepMetrics } from '../rl/grpo-trainer.js';
import { ProgressBar } from './progress.js';

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
  baseDtype: 'f32 or f16 storage of the frozen base matrices',
  numGenerations: 'completions per prompt (G)',
  promptsPerStep: 'prompts per step (a step trains on prompts × G completions)',
  generationBatchSize: 'sequences generated together',
  microBatchSize: 'sequences per forward/backward (gradient accumulation)',
  promptForward: 'shared: a prompt runs once per micro-batch and its completions attend to it (same gradients, less work; with LoRA dropout the group shares the prompt’s mask); repeated: once per completion',
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
  steps: 'optimizer steps to train',
  evalEvery: 'evaluate held-out prompts every N steps',
  evalPrompts: 'held-out prompts per evaluation',
  saveEvery: 'checkpoint every N steps (and at the end)',
  logCompletions: 'completions per step written to completions.jsonl',
  outDir: 'output folder (metrics.jsonl, completions.jsonl, curves.svg, checkpoints)',
  seed: 'seed of data order, sampling, LoRA init and dropout',
  resume: 'continue from the newest checkpoint in --out-dir, exactly',
};

function parseValue(key: keyof GrpoConfig, raw: string | boolean): GrpoConfig[keyof GrpoConfig] {
  const template = DEFAULT_CONFIG[key];
  const flag = `--${kebab(key)}`;
  if (typeof template === 'boolean') return raw === true || raw === 'true';
  if (typeof raw !== 'string') throw new Error(`${flag} needs a value`);
  if (Array.isArray(template) && typeof template[0] === 'number') {
    const parts = raw.split(',').map(Number);
    if (parts.length !== 2 || parts.some((x) => !Number.isFinite(x))) throw new Error(`${flag} needs two numbers, e.g. 0.9,0.99`);
    return parts as [number, number];
  }
  if (Array.isArray(template)) return raw.split(',').map((s) => s.trim()).filter(Boolean);
  // Optional numeric settings have no default to take their type from.
  if (typeof template === 'number' || key === 'epsilonHigh' || key === 'delta') {
    const value = Number(raw);
    if (!Number.isFinite(value)) throw new Error(`${flag} needs a number, got '${raw}'`);
    return value;
  }
  return raw;
}

const keys = [...new Set([...Object.keys(DEFAULT_CONFIG), ...Object.keys(HELP)])] as (keyof GrpoConfig)[];
const { values } = parseArgs({
  options: {
    ...Object.fromEntries(keys.map((k) => [kebab(k), { type: typeof DEFAULT_CONFIG[k] === 'boolean' ? ('boolean' as const) : ('string' as const) }])),
    config: { type: 'string' },
    help: { type: 'boolean' },
  },
  strict: true,
});
if (values.help) {
  console.log('usage: node train.js [--config run.json] [--flag value …]\n\nA config file is a JSON object with the same names (camelCase or kebab-case); flags override it.\n');
  for (const k of keys) console.log(`  --${kebab(k).padEnd(28)} ${HELP[k]} (default: ${JSON.stringify(DEFAULT_CONFIG[k]) ?? 'off'})`);
  process.exit(0);
}

const config: GrpoConfig = { ...DEFAULT_CONFIG };
if (typeof values.config === 'string') {
  const file = JSON.parse(readFileSync(values.config, 'utf8')) as Record<string, unknown>;
  for (const [name, value] of Object.entries(file)) {
    const key = keys.find((k) => k === name || kebab(k) === name);
    if (!key) throw new Error(`${values.config}: unknown setting '${name}'`);
    (config as unknown as Record<string, unknown>)[key] = typeof value === 'string' || typeof value === 'boolean' ? parseValue(key, value) : value;
  }
}
for (const key of keys) {
  const raw = (values as Record<string, string | boolean | undefined>)[kebab(key)];
  if (raw !== undefined) (config as unknown as Record<string, unknown>)[key] = parseValue(key, raw);
}

const gpu = await Gpu.create();
console.error(`adapter: ${gpu.adapterName}`);
const trainer = await GrpoTrainer.create(gpu, config, repositoryRoot());
console.error(`model ${config.model}, task ${trainer.task.name} (${trainer.task.train.length} train / ${trainer.task.eval.length} held-out prompts), LoRA r=${config.loraRank} on ${trainer.lora.modules.length} modules, output ${config.outDir}${trainer.step ? `, resuming at step ${trainer.step}` : ''}`);

let interrupts = 0;
process.on('SIGINT', () => {
  if (++interrupts > 1) process.exit(130);
  trainer.stopRequested = true;
  console.error('\nstopping after this step to save a checkpoint (Ctrl-C again to quit without saving)');
});

const progress = new ProgressBar(config.steps, 'GRPO ', 1);
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
    if (m.frac_reward_zero_std === 1) console.error(`\nstep ${m.step}: every group's completions got the same reward — no learning signal this step (loss 0 is expected)`);
    progress.update(m.step, show(m));
  });
  console.error(`done: ${trainer.step} steps; metrics in ${trainer.log.metricsPath}, curves in ${trainer.log.plotPath}`);
} catch (error) {
  if (error instanceof TrainingDiverged) {
    console.error(`\n${error.message}`);
    process.exitCode = 2;
  } else throw error;
} finally {
  trainer.log.plot();
  await trainer.close();
  gpu.destroy();
}
