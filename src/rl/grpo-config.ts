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
  /** Storage of the frozen base's matrices. */
  baseDtype: 'f32' | 'f16';
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
  saveEvery: number;
  /** Completions per step written to completions.jsonl. */
  logCompletions: number;
  outDir: string;
  seed: number;
  /** Continue from the newest checkpoint in outDir. */
  resume: boolean;
}

export const DEFAULT_CONFIG: GrpoConfig = {
  model: 'small',
  task: 'quick-arithmetic',
  loraRank: 8,
  loraAlpha: 16,
  loraDropout: 0,
  loraTargets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  useRslora: false,
  baseDtype: 'f32',
  numGenerations: 4,
  promptsPerStep: 4,
  generationBatchSize: 16,
  microBatchSize: 4,
  promptForward: 'shared',
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
  saveEvery: 10,
  logCompletions: 4,
  outDir: 'runs/grpo',
  seed: 0,
  resume: false,
};

/** Checks ranges so a bad flag fails before minutes of model loading. */
export function validateConfig(c: GrpoConfig): GrpoConfig {
  const positiveInts: (keyof GrpoConfig)[] = ['loraRank', 'numGenerations', 'promptsPerStep', 'generationBatchSize', 'microBatchSize', 'maxNewTokens', 'numIterations', 'steps', 'evalEvery', 'saveEvery'];
  for (const key of positiveInts) {
    const v = c[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new Error(`--${kebab(key)} must be a positive integer, got ${String(v)}`);
  }
  const nonNegative: (keyof GrpoConfig)[] = ['loraAlpha', 'temperature', 'topK', 'minP', 'beta', 'epsilon', 'learningRate', 'warmupSteps', 'weightDecay', 'maxGradNorm', 'evalPrompts', 'logCompletions', 'seed'];
  for (const key of nonNegative) {
    const v = c[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Error(`--${kebab(key)} must be a non-negative number, got ${String(v)}`);
  }
  if (c.numGenerations < 2) throw new Error('--num-generations must be at least 2: GRPO compares completions within a group');
  if (!(c.topP > 0 && c.topP <= 1)) throw new Error(`--top-p must be in (0, 1], got ${c.topP}`);
  if (!(c.loraDropout >= 0 && c.loraDropout < 1)) throw new Error(`--lora-dropout must be in [0, 1), got ${c.loraDropout}`);
  const oneOf = <K extends keyof GrpoConfig>(key: K, allowed: readonly GrpoConfig[K][]) => {
    if (!allowed.includes(c[key])) throw new Error(`--${kebab(key)} must be one of ${allowed.join(', ')}, got ${String(c[key])}`);
  };
  oneOf('lossType', ['grpo', 'bnpo', 'dr_grpo', 'dapo']);
  oneOf('importanceSampling', ['token', 'sequence']);
  oneOf('scaleRewards', ['group', 'batch', 'none']);
  oneOf('klEstimator', ['k1', 'k2', 'k3']);
  oneOf('lrSchedule', ['constant', 'cosine', 'linear']);
  oneOf('baseDtype', ['f32', 'f16']);
  oneOf('promptForward', ['shared', 'repeated']);
  return c;
}

export function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`);
}
