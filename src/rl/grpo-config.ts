import type { Gpu } from '../gpu/gpu.js';
import { checkSettings, kebab, type SettingSchema } from '../io/settings-schema.js';

/**
 * Everything a GRPO run is configured by, with defaults chosen for this project's CPU-only
 * machines (small batches, short completions) and TRL's names and meanings where TRL has the knob.
 */
export interface GrpoConfig {
  /** Registered model name (small, tiny) or checkpoint path. */
  model: string;
  /** Built-in task (quick-arithmetic, arithmetic, countdown, triton, tiny-arithmetic) or a JSONL file of prompt rows. */
  task: string;
  /** A reward config JSON (graders, weights, gates); default: the built-in task's. */
  rewardConfig?: string;
  /** The local model LLM-as-judge graders in the reward config use (loaded once, frozen). */
  judgeModel?: string;
  /** Held-out prompts (JSONL); default: the built-in task's held-out split. */
  evalData?: string;
  /** Start from this PEFT adapter (e.g. an SFT warm-up) instead of fresh LoRA weights. */
  initAdapter?: string;
  loraRank: number;
  loraAlpha: number;
  loraDropout: number;
  loraTargets: string[];
  useRslora: boolean;
  /**
   * Storage of the frozen base's matrices; auto: f16 on a CPU adapter, where it made a GRPO step
   * faster (bench/README.md), f32 on a GPU (see resolveBaseDtype).
   */
  baseDtype: 'auto' | 'f32' | 'f16';
  /** G: completions sampled per prompt (TRL num_generations). */
  numGenerations: number;
  /** Prompts per step; a step trains on promptsPerStep × G completions. */
  promptsPerStep: number;
  /** Sequences per GPU generation batch. */
  generationBatchSize: number;
  /** Sequences per forward/backward (gradient accumulation splits the step into these). */
  microBatchSize: number;
  /**
   * shared: the completions of a prompt in one micro-batch attend to one forward of the prompt
   * (same loss and gradients, less work); repeated: each completion runs its own copy.
   */
  promptForward: 'shared' | 'repeated';
  /**
   * skip: with β = 0 completions with advantage 0 (e.g. a group whose rewards were all equal) get
   * no forward or backward, since their gradient is exactly 0. With dapo, one iteration and no LoRA
   * dropout they leave the step (the same gradient up to float rounding); otherwise a micro-batch
   * made only of them is left out (the same parameters bit for bit). train: computed anyway
   * (entropy and clip metrics then cover them too).
   */
  zeroAdvantageCompletions: 'skip' | 'train';
  /**
   * reuse: the forwards that sample a rollout keep every decoder linear's output, and the first
   * optimizer step on it reads them instead of running the frozen base's products again (the same
   * weights ran them; the loss and gradients are the same up to float rounding), at the memory of
   * those outputs. recompute: the training forward computes them. auto: reuse without LoRA dropout
   * (whose masks the sampling forwards do not draw) unless memory comes first (--max-memory, or
   * --recompute on).
   */
  rolloutProjections: 'auto' | 'reuse' | 'recompute';
  /**
   * Device memory a step may use, in GiB (on a CPU adapter, of the process's memory). With it the
   * micro-batch size (unless given) and activation recomputation are chosen to fit, or the run is refused.
   */
  maxMemory?: number;
  /** Activation recomputation per decoder layer: auto turns it on only when --max-memory needs it. */
  recompute: 'auto' | 'on' | 'off';
  maxNewTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  /** KL coefficient β (TRL beta); 0 skips the reference forward. */
  beta: number;
  klEstimator: 'k1' | 'k2' | 'k3';
  epsilon: number;
  /** Upper clip (DAPO's clip-higher); defaults to epsilon. */
  epsilonHigh?: number;
  /** Two-sided cap on the ratio (TRL delta). */
  delta?: number;
  lossType: 'grpo' | 'bnpo' | 'dr_grpo' | 'dapo';
  importanceSampling: 'token' | 'sequence';
  scaleRewards: 'group' | 'batch' | 'none';
  maskTruncatedCompletions: boolean;
  /** Optimizer steps per rollout, reusing it with cached old log-probs (TRL num_iterations). */
  numIterations: number;
  learningRate: number;
  lrSchedule: 'constant' | 'cosine' | 'linear';
  warmupSteps: number;
  weightDecay: number;
  adamBetas: [number, number];
  maxGradNorm: number;
  steps: number;
  evalEvery: number;
  evalPrompts: number;
  /** Leave out the held-out evaluation before the first step (it scores the starting model, which another run may already have scored). */
  skipEvalAtStart: boolean;
  saveEvery: number;
  /** Completions per step written to completions.jsonl. */
  logCompletions: number;
  outDir: string;
  seed: number;
  /** Continue from the newest checkpoint in outDir. */
  resume: boolean;
  /** Replace the run outDir holds (deleted as a whole before the first step). */
  overwrite: boolean;
  /** Leave out data rows whose prompt and maxNewTokens do not fit the model's context (otherwise they stop the run before it starts). */
  skipLongRows: boolean;
}

export const DEFAULT_CONFIG: GrpoConfig = {
  model: 'small',
  task: 'quick-arithmetic',
  loraRank: 8,
  loraAlpha: 16,
  loraDropout: 0,
  loraTargets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  useRslora: false,
  baseDtype: 'auto',
  numGenerations: 4,
  promptsPerStep: 4,
  generationBatchSize: 16,
  microBatchSize: 4,
  promptForward: 'shared',
  zeroAdvantageCompletions: 'skip',
  rolloutProjections: 'auto',
  recompute: 'auto',
  maxNewTokens: 32,
  temperature: 0.7,
  topK: 0,
  topP: 1.0,
  minP: 0,
  beta: 0.0,
  klEstimator: 'k3',
  epsilon: 0.2,
  lossType: 'dapo',
  importanceSampling: 'token',
  scaleRewards: 'group',
  maskTruncatedCompletions: false,
  numIterations: 1,
  learningRate: 1e-3,
  lrSchedule: 'cosine',
  warmupSteps: 0,
  weightDecay: 0,
  adamBetas: [0.9, 0.99],
  maxGradNorm: 1.0,
  steps: 20,
  evalEvery: 5,
  evalPrompts: 16,
  skipEvalAtStart: false,
  saveEvery: 10,
  logCompletions: 4,
  outDir: 'runs/grpo',
  seed: 0,
  resume: false,
  overwrite: false,
  skipLongRows: false,
};

const positiveInteger = { type: 'integer', minimum: 1 } as const;
const nonNegativeInteger = { type: 'integer', minimum: 0 } as const;
const nonNegative = { type: 'number', minimum: 0 } as const;
const name = { type: 'string', minLength: 1 } as const;
const flag = { type: 'boolean' } as const;

/** Every setting's type and range: one schema for train.js's flags, config files and the trainer itself. */
export const GRPO_SETTINGS: Readonly<Record<keyof GrpoConfig, SettingSchema>> = {
  model: name,
  task: name,
  rewardConfig: name,
  judgeModel: name,
  evalData: name,
  initAdapter: name,
  loraRank: positiveInteger,
  loraAlpha: { type: 'number', exclusiveMinimum: 0 },
  loraDropout: { type: 'number', minimum: 0, exclusiveMaximum: 1 },
  loraTargets: { type: 'array', items: name, minItems: 1 },
  useRslora: flag,
  baseDtype: { type: 'string', enum: ['auto', 'f32', 'f16'] },
  promptForward: { type: 'string', enum: ['shared', 'repeated'] },
  zeroAdvantageCompletions: { type: 'string', enum: ['skip', 'train'] },
  rolloutProjections: { type: 'string', enum: ['auto', 'reuse', 'recompute'] },
  maxMemory: { type: 'number', exclusiveMinimum: 0 },
  recompute: { type: 'string', enum: ['auto', 'on', 'off'] },
  // GRPO compares completions within a group: one alone has no advantage.
  numGenerations: { type: 'integer', minimum: 2 },
  promptsPerStep: positiveInteger,
  generationBatchSize: positiveInteger,
  microBatchSize: positiveInteger,
  maxNewTokens: positiveInteger,
  temperature: nonNegative,
  topK: nonNegativeInteger,
  topP: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
  minP: { type: 'number', minimum: 0, exclusiveMaximum: 1 },
  beta: nonNegative,
  klEstimator: { type: 'string', enum: ['k1', 'k2', 'k3'] },
  epsilon: nonNegative,
  epsilonHigh: nonNegative,
  // A cap at or below 1 would clip every ratio that rises above the sampling policy's.
  delta: { type: 'number', exclusiveMinimum: 1 },
  lossType: { type: 'string', enum: ['grpo', 'bnpo', 'dr_grpo', 'dapo'] },
  importanceSampling: { type: 'string', enum: ['token', 'sequence'] },
  scaleRewards: { type: 'string', enum: ['group', 'batch', 'none'] },
  maskTruncatedCompletions: flag,
  numIterations: positiveInteger,
  learningRate: nonNegative,
  lrSchedule: { type: 'string', enum: ['constant', 'cosine', 'linear'] },
  warmupSteps: nonNegativeInteger,
  weightDecay: nonNegative,
  adamBetas: { type: 'array', items: { type: 'number', minimum: 0, exclusiveMaximum: 1 }, minItems: 2, maxItems: 2 },
  maxGradNorm: { type: 'number', exclusiveMinimum: 0 },
  // 0 trains nothing: the run is the held-out evaluation of the starting model (the base, or --init-adapter).
  steps: nonNegativeInteger,
  evalEvery: positiveInteger,
  evalPrompts: nonNegativeInteger,
  skipEvalAtStart: flag,
  saveEvery: positiveInteger,
  logCompletions: nonNegativeInteger,
  outDir: name,
  seed: nonNegativeInteger,
  resume: flag,
  overwrite: flag,
  skipLongRows: flag,
};

/** Checks every setting (type and range) so a bad one fails before minutes of model loading. */
export function validateConfig(c: GrpoConfig): GrpoConfig {
  checkSettings(GRPO_SETTINGS, { ...c }, { coerce: false, name: (key) => `--${kebab(key)}` });
  if (c.resume && c.overwrite) throw new Error('--resume and --overwrite contradict each other: continue the run in --out-dir, or replace it');
  if (c.rolloutProjections === 'reuse' && c.loraDropout > 0) {
    throw new Error(`--rollout-projections reuse with --lora-dropout ${c.loraDropout}: the training forward draws dropout masks the sampling forwards did not, so their outputs cannot stand for it (use auto or recompute)`);
  }
  if (c.steps === 0 && c.skipEvalAtStart) throw new Error('--steps 0 with --skip-eval-at-start would do nothing: a run of 0 steps is the held-out evaluation of the starting model');
  return c;
}

/** Whether the training forward reads the sampling forwards' linear outputs (see GrpoConfig.rolloutProjections). */
export function reusesRolloutProjections(c: Pick<GrpoConfig, 'rolloutProjections' | 'loraDropout' | 'maxMemory' | 'recompute'>): boolean {
  if (c.rolloutProjections !== 'auto') return c.rolloutProjections === 'reuse';
  return c.loraDropout === 0 && c.maxMemory === undefined && c.recompute !== 'on';
}

/**
 * The storage a run's frozen base gets: `auto` is f16 on a CPU adapter (lavapipe streams half the
 * bytes per weight; the small model's weights come from a 4-bit GGUF, far coarser than f16's
 * rounding) when it has shader-f16 (SwiftShader has not), and f32 elsewhere, until a GPU has been measured.
 */
export function resolveBaseDtype(setting: GrpoConfig['baseDtype'], gpu: Pick<Gpu, 'isCpuAdapter' | 'hasF16'>): 'f32' | 'f16' {
  if (setting !== 'auto') return setting;
  return gpu.isCpuAdapter && gpu.hasF16 ? 'f16' : 'f32';
}
