// Time of a GRPO step and its split (generation / reward / forward-backward / optimizer), peak GPU
// buffer memory by kind and the process's resident set, the share of GPU time inside matmul kernels, and the sustained GFLOP/s:
//   npm run build && node dist/bench/grpo-step.js [--model small] [--task arithmetic] [--prompts 8]
//        [--generations 4] [--new 128] [--steps 2] [--micro 4] [--generation-batch N] [--prompt-forward shared|repeated] [--zero-advantage-completions skip|train] [--rollout-projections auto|reuse|recompute] [--skip-profile] [--warmup] [--json FILE]
//        [--suballocation on|off] [--pool-cap MiB|none] [--trim-between-phases on|off] [--pool-reuse-slack FRACTION]
//        [--base-dtype f32|f16] [--max-memory GiB] [--recompute auto|on|off] [--collect-every DISPATCHES|off]
// --generation-batch samples the step's completions in batches of N rows (default: all at once, as TRL does;
// fewer rows hold less KV cache). Without --micro, --max-memory picks the micro-batch size; the estimate is printed next to the measured peaks.
// --suballocation, --pool-cap, --trim-between-phases and --pool-reuse-slack override the device's memory
// defaults (Dawn sub-allocates; without it the pool is capped and trimmed between generation and
// training) to compare them in one sitting. --collect-every sets how many dispatches (bind groups)
// may be recorded between garbage collections at the trainer's waits (Gpu.collectEvery; off: never).
// --json writes the timings, token counts, settings and the first step's prompts (what
// bench/peer/run.ts hands to TRL); --skip-profile leaves out the extra profiled step. --warmup first
// runs the same first step on a throwaway trainer (same settings and seed, so the same rollout and
// the same kernels) and then times a fresh trainer: the measured steps are then free of what only a
// process's first use of each kernel costs (on lavapipe, creating a pipeline waits until the queue
// has run everything submitted, and the queue then idles while the host records again).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Gpu } from '../src/gpu/gpu.js';
import { KernelProfiler } from '../src/gpu/profiler.js';
import { repositoryRoot } from '../src/io/repository-root.js';
import { DEFAULT_CONFIG, type GrpoConfig } from '../src/rl/grpo-config.js';
import { encodePrompt, promptMessages } from '../src/rl/evaluate.js';
import { GrpoTrainer } from '../src/rl/grpo-trainer.js';
import type { StepMetrics } from '../src/rl/grpo-update.js';
import { describeEstimate } from '../src/rl/memory-plan.js';
import { ROLLOUT_OPTIONS } from './rollout-options.js';
import { benchArgs } from './args.js';

const args = benchArgs(import.meta.url, {
    model: { type: 'string', default: 'small' },
    ...ROLLOUT_OPTIONS,
    steps: { type: 'string', default: '2' },
    micro: { type: 'string' },
    'generation-batch': { type: 'string' },
    'base-dtype': { type: 'string', default: DEFAULT_CONFIG.baseDtype },
    'max-memory': { type: 'string' },
    recompute: { type: 'string', default: DEFAULT_CONFIG.recompute },
    'prompt-forward': { type: 'string', default: DEFAULT_CONFIG.promptForward },
    'zero-advantage-completions': { type: 'string', default: DEFAULT_CONFIG.zeroAdvantageCompletions },
    'rollout-projections': { type: 'string', default: DEFAULT_CONFIG.rolloutProjections },
    'skip-profile': { type: 'boolean', default: false },
    warmup: { type: 'boolean', default: false },
    json: { type: 'string' },
    suballocation: { type: 'string' },
    'pool-cap': { type: 'string' },
    'trim-between-phases': { type: 'string' },
    'pool-reuse-slack': { type: 'string' },
    'collect-every': { type: 'string' },
});
const onOff = (flag: string): boolean | undefined => {
  const value = args[flag as keyof typeof args];
  if (value === undefined) return undefined;
  if (value !== 'on' && value !== 'off') throw new Error(`--${flag}: expected on or off, got ${String(value)}`);
  return value === 'on';
};
const steps = Number(args.steps);
const profiled = !args['skip-profile'];
const gpu = await Gpu.create({ disabledToggles: ['timestamp_quantization'], suballocation: onOff('suballocation') });
if (args['pool-cap'] !== undefined) {
  const cap = args['pool-cap'] === 'none' ? Number.POSITIVE_INFINITY : Number(args['pool-cap']) * 2 ** 20;
  if (!(cap >= 0)) throw new Error(`--pool-cap: expected MiB or none, got ${args['pool-cap']}`);
  gpu.pool.maxCachedBytes = cap;
}
gpu.trimBetweenPhases = onOff('trim-between-phases') ?? gpu.trimBetweenPhases;
if (args['pool-reuse-slack'] !== undefined) {
  gpu.pool.reuseSlack = Number(args['pool-reuse-slack']);
  if (!(gpu.pool.reuseSlack >= 0)) throw new Error(`--pool-reuse-slack: expected a fraction ≥ 0, got ${args['pool-reuse-slack']}`);
}
if (args['collect-every'] !== undefined) {
  gpu.collectEvery = args['collect-every'] === 'off' ? Number.POSITIVE_INFINITY : Number(args['collect-every']);
  if (!(gpu.collectEvery >= 1)) throw new Error(`--collect-every: expected a number of dispatches ≥ 1 or off, got ${args['collect-every']}`);
}
const memoryDefaults = `sub-allocation ${gpu.suballocation ? 'on' : 'off'}, pool cap ${Number.isFinite(gpu.pool.maxCachedBytes) ? `${gpu.pool.maxCachedBytes / 2 ** 20} MiB` : 'none'}, trim between phases ${gpu.trimBetweenPhases ? 'on' : 'off'}, reuse slack ${gpu.pool.reuseSlack}, garbage collection every ${gpu.collectEvery} dispatches`;
const settings: GrpoConfig = {
  ...DEFAULT_CONFIG,
  model: args.model!,
  task: args.task!,
  promptsPerStep: Number(args.prompts),
  numGenerations: Number(args.generations),
  generationBatchSize: Number(args['generation-batch'] ?? Number(args.prompts) * Number(args.generations)),
  microBatchSize: args.micro === undefined ? DEFAULT_CONFIG.microBatchSize : Number(args.micro),
  baseDtype: args['base-dtype'] as GrpoConfig['baseDtype'],
  maxMemory: args['max-memory'] === undefined ? undefined : Number(args['max-memory']),
  recompute: args.recompute as GrpoConfig['recompute'],
  promptForward: args['prompt-forward'] as GrpoConfig['promptForward'],
  zeroAdvantageCompletions: args['zero-advantage-completions'] as GrpoConfig['zeroAdvantageCompletions'],
  rolloutProjections: args['rollout-projections'] as GrpoConfig['rolloutProjections'],
  maxNewTokens: Number(args.new),
  beta: 0,
  steps: profiled ? steps + 1 : steps,
  evalEvery: 1_000_000,
  saveEvery: 1_000_000,
  evalPrompts: 0,
  outDir: mkdtempSync(join(tmpdir(), 'bench-grpo-')),
};
const given = new Set(Object.keys(settings).filter((key) => key !== 'microBatchSize' || args.micro !== undefined));
let warmupSeconds: number | null = null;
if (args.warmup) {
  const warm = await GrpoTrainer.create(gpu, { ...settings, steps: 1, outDir: mkdtempSync(join(tmpdir(), 'bench-grpo-warmup-')) }, repositoryRoot(), given);
  const started = performance.now();
  await warm.train(() => {});
  warmupSeconds = (performance.now() - started) / 1000;
  await warm.close();
  // Its weights, adapters and optimizer moments go back before the measured trainer loads its own.
  warm.optimizer.dispose();
  warm.lora.dispose();
  for (const t of warm.loaded.model.parameters.values()) t.dispose();
  console.log(`warm-up step (same rollout, throwaway trainer, not measured): ${warmupSeconds.toFixed(1)} s`);
}
const trainer = await GrpoTrainer.create(gpu, settings, repositoryRoot(), given);
const rows: StepMetrics[] = [];
const profiler = new KernelProfiler(gpu.device);
await trainer.train((m) => {
  rows.push(m);
  // Profile the last step only: per-dispatch timestamps add their own overhead.
  gpu.commands.profiler = profiled && rows.length === steps ? profiler : null;
});
const kernels = await profiler.collect();
await trainer.close();

const config = trainer.loaded.model.config;
let baseParams = 0;
// An untied embedding (whole or its blocks of rows) is a lookup: no multiply-adds.
for (const [name, t] of trainer.loaded.model.parameters) if (!name.startsWith('model.embed_tokens.weight') || config.tie_word_embeddings) baseParams += t.size;
const measured = rows.slice(0, steps);
const avg = (key: string) => measured.reduce((s, r) => s + (r[key] ?? 0), 0) / measured.length;
const total = avg('time/generation_s') + avg('time/reward_s') + avg('time/train_s') + avg('time/optimizer_s');
const completionTokens = avg('completions/mean_length') * Number(args.prompts) * Number(args.generations);
const sequenceTokens = avg('tokens_per_second/train') * (avg('time/train_s') + avg('time/optimizer_s'));
// Tokens the forward/backward ran (each shared prompt once), and positions with padding.
const trainTokens = avg('tokens/computed');
// Generation: 2 FLOP per weight per token. Training with a frozen base: forward 2, backward 2
// (input gradients only) per weight per token; LoRA's own matrices are negligible.
const flops = 2 * baseParams * completionTokens + 4 * baseParams * trainTokens;
const gpuMs = kernels.reduce((s, k) => s + k.ms, 0);
const matmulMs = kernels.filter((k) => k.label.startsWith('matmul')).reduce((s, k) => s + k.ms, 0);
console.log(`${args.model} on ${gpu.adapterName}, ${args.prompts} prompts × ${args.generations} generations × ≤${args.new} new tokens, β = 0, base weights ${args['base-dtype']}; ${memoryDefaults}`);
console.log(`step: ${total.toFixed(1)} s = generation ${avg('time/generation_s').toFixed(1)} + reward ${avg('time/reward_s').toFixed(2)} + forward/backward ${avg('time/train_s').toFixed(1)} + optimizer ${avg('time/optimizer_s').toFixed(2)} (mean of ${measured.length})`);
console.log(`prompt forward ${args['prompt-forward']}: completion tokens ${completionTokens.toFixed(0)}, sequence tokens ${sequenceTokens.toFixed(0)}, trained tokens ${trainTokens.toFixed(0)} (${avg('tokens/computed_positions').toFixed(0)} positions with padding), completions left out with advantage 0 (${args['zero-advantage-completions']}) ${avg('completions/skipped_in_training')}, peak GPU buffers ${avg('memory/peak_gpu_mib').toFixed(0)} MiB`);
console.log(`work ≈ ${(flops / 1e12).toFixed(2)} TFLOP → ${(flops / total / 1e9).toFixed(1)} GFLOP/s sustained${profiled ? `; matmul kernels ${((100 * matmulMs) / gpuMs).toFixed(0)}% of profiled GPU time` : ''}`);
const last = measured.at(-1)!;
const mib = (key: string) => `${last[`memory/${key}`].toFixed(0)} MiB`;
console.log(
  `device memory at the end of the last step: frozen ${mib('frozen_mib')} + trainable ${mib('trainable_mib')} + pool cache ${mib('pool_cache_mib')} + live other ${mib('live_other_mib')} = ${mib('device_mib')}; ` +
    `its peaks: live ${mib('peak_gpu_mib')} (generation ${mib('peak_generation_mib')}, training ${mib('peak_training_mib')}), device ${mib('peak_device_mib')}, staging ${mib('peak_staging_mib')}`,
);
const plan = trainer.memoryPlan;
console.log(`memory plan: micro-batch ${plan.microBatchSize}, recomputation ${plan.recompute ? 'on' : 'off'}; estimated ${describeEstimate(plan.estimate)}`);
const usage = process.memoryUsage();
console.log(
  `process: RSS ${mib('rss_mib')} (peak ${mib('max_rss_mib')}), ${last['memory/mappings']} memory mappings, ${gpu.collections} garbage collections in ${gpu.collectionSeconds.toFixed(2)} s; JS heap ${(usage.heapUsed / 2 ** 20).toFixed(0)} MiB, ArrayBuffers ${(usage.arrayBuffers / 2 ** 20).toFixed(0)} MiB`,
);
for (const k of kernels.slice(0, 8)) console.log(`  ${k.label.padEnd(60)} ${(k.ms / 1000).toFixed(2).padStart(7)} s ${((100 * k.ms) / gpuMs).toFixed(1).padStart(5)}%`);
if (args.json) {
  const tokenizer = trainer.loaded.tokenizer;
  const prompts = trainer.promptRows(0).map((row) => ({ messages: promptMessages(row), prompt_ids: encodePrompt(tokenizer, row), example: row }));
  const timings = { step_s: total, generation_s: avg('time/generation_s'), reward_s: avg('time/reward_s'), train_s: avg('time/train_s'), optimizer_s: avg('time/optimizer_s') };
  const tokens = { completion_tokens: completionTokens, trained_tokens: trainTokens, mean_completion_length: avg('completions/mean_length'), reward: avg('reward') };
  // Peak resident set of the whole process, start-up included: what the peer benchmark compares.
  const peak_rss_mib = process.resourceUsage().maxRSS / 1024;
  writeFileSync(args.json, JSON.stringify({ adapter: gpu.adapterName, settings, ...timings, ...tokens, warmup_s: warmupSeconds, peak_rss_mib, mappings: last['memory/mappings'], prompts }, null, 1));
}
console.log(`reproduce: npm run build && node dist/bench/grpo-step.js ${process.argv.slice(2).join(' ')}`);
gpu.destroy();
