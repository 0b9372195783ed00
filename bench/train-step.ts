// Time of a GRPO step's forward/backward + optimizer alone, on a fixed rollout (no sampling, no
// grader): the task's first --prompts prompts × --generations completions of seeded random tokens
// whose lengths are drawn between --new/4 and --new, with seeded advantages. The same inputs every
// run, so two builds (or two machines) train exactly the same work; --profile adds one profiled step
// and splits its GPU time by role (which products, attention, elementwise).
//   npm run build && node dist/bench/train-step.js [--model small] [--task arithmetic] [--prompts 2]
//        [--generations 4] [--new 64] [--steps 2] [--micro 4] [--base-dtype f32|f16] [--profile]
import { mkdtempSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { seededRandom } from '../src/data/random.js';
import { Gpu } from '../src/gpu/gpu.js';
import type { Params } from '../src/gpu/commands.js';
import { KernelProfiler } from '../src/gpu/profiler.js';
import { vocabularyBlockWidth } from '../src/nn/lm-head-logprobs.js';
import { repositoryRoot } from '../src/io/repository-root.js';
import { encodePrompt } from '../src/rl/evaluate.js';
import { DEFAULT_CONFIG, type GrpoConfig } from '../src/rl/grpo-config.js';
import { GrpoTrainer } from '../src/rl/grpo-trainer.js';
import { ROLLOUT_OPTIONS } from './rollout-options.js';
import { mainThreadCpuMs, workerCpuMs } from './timing.js';
import { benchArgs } from './args.js';

const args = benchArgs(import.meta.url, {
    model: { type: 'string', default: 'small' },
    ...ROLLOUT_OPTIONS,
    prompts: { type: 'string', default: '2' },
    new: { type: 'string', default: '64' },
    steps: { type: 'string', default: '2' },
    micro: { type: 'string', default: '4' },
    'base-dtype': { type: 'string', default: 'f32' },
    profile: { type: 'boolean', default: false },
});
const prompts = Number(args.prompts);
const generations = Number(args.generations);
const maxNew = Number(args.new);
const gpu = await Gpu.create({ disabledToggles: ['timestamp_quantization'] });
const settings: GrpoConfig = {
  ...DEFAULT_CONFIG,
  model: args.model!,
  task: args.task!,
  promptsPerStep: prompts,
  numGenerations: generations,
  generationBatchSize: prompts * generations,
  microBatchSize: Number(args.micro),
  baseDtype: args['base-dtype'] as GrpoConfig['baseDtype'],
  maxNewTokens: maxNew,
  beta: 0,
  evalPrompts: 0,
  outDir: mkdtempSync(join(tmpdir(), 'bench-train-')),
};
const trainer = await GrpoTrainer.create(gpu, settings, repositoryRoot());
const random = seededRandom(12345);
const vocab = trainer.loaded.model.config.vocab_size;
const hidden = trainer.loaded.model.config.hidden_size;
const sequences = trainer.promptRows(0).flatMap((row) => {
  const promptIds = encodePrompt(trainer.loaded.tokenizer, row);
  return Array.from({ length: generations }, () => ({
    promptIds,
    completionIds: Array.from({ length: Math.ceil(maxNew / 4 + random() * (maxNew - maxNew / 4)) }, () => Math.floor(random() * vocab)),
  }));
});
const advantages = Float64Array.from(sequences, () => random() * 2 - 1);

/** FLOPs recorded per matmul role (2·M·N·K per product), for the profile's rates. */
const roleFlops = new Map<string, number>();

/** A matmul's role from its shape (m, n, k) and whether W is read along k (the model's x·Wᵀ). */
function matmulRole(m: number, n: number, k: number, wAlongK: boolean): string {
  const rank = settings.loraRank;
  if (n === vocab) return 'matmul: LM head logits';
  // The LM head's dX runs over blocks of the vocabulary (vocabularyBlockWidth columns, the last the
  // remainder); no projection of this model sums over that many inputs into the hidden size.
  const vocabularyBlock = k === vocabularyBlockWidth(gpu) || k === vocab % vocabularyBlockWidth(gpu);
  if (k === vocab || (!wAlongK && n === hidden && vocabularyBlock)) return 'matmul: LM head dX';
  if (m === rank || n === rank || k === rank) return 'matmul: LoRA (rank side)';
  return wAlongK ? 'matmul: base projection forward' : 'matmul: base projection dX';
}

function classify(label: string, params: Params | undefined): string {
  if (!label.startsWith('matmul') || !params?.u32) return label.replace(/\{.*$/, '');
  // The broadcast kernel names its layout; the others' params hold b's k stride (1: x·Wᵀ).
  const [m, n, k, , , bKStride] = params.u32;
  const wAlongK = label.startsWith('matmul_broadcast') ? label.includes('"W_ALONG_K":true') : bKStride === 1;
  const role = matmulRole(m, n, k, wAlongK);
  roleFlops.set(role, (roleFlops.get(role) ?? 0) + 2 * m * n * k);
  return role;
}

const completionTokens = sequences.reduce((n, s) => n + s.completionIds.length, 0);
console.log(`${args.model}, ${prompts} prompts × ${generations} completions (${completionTokens} tokens, ≤ ${maxNew} each), micro-batch ${args.micro}, base ${args['base-dtype']}; load ${loadavg()[0].toFixed(1)}`);
const steps = Number(args.steps);
for (let step = 0; step < steps + (args.profile ? 1 : 0); step++) {
  const profiler = args.profile && step === steps ? new KernelProfiler(gpu.device) : null;
  if (profiler) profiler.classify = classify;
  gpu.commands.profiler = profiler;
  const [mainBefore, workersBefore] = [mainThreadCpuMs(), workerCpuMs()];
  const start = performance.now();
  const metrics = await trainer.trainOn(sequences, advantages);
  const seconds = (performance.now() - start) / 1000;
  const [mainAfter, workersAfter] = [mainThreadCpuMs(), workerCpuMs()];
  gpu.commands.profiler = null;
  console.log(
    `step ${step + 1}${profiler ? ' (profiled)' : ''}: ${seconds.toFixed(1)} s (forward/backward ${metrics['time/train_s'].toFixed(1)} + optimizer ${metrics['time/optimizer_s'].toFixed(2)}); ` +
      `trained tokens ${metrics['tokens/computed']}, positions ${metrics['tokens/computed_positions']}; loss ${metrics.loss.toPrecision(6)}, grad norm ${metrics.grad_norm.toPrecision(6)}; load ${loadavg()[0].toFixed(1)}`,
  );
  // Where the cores went: the JavaScript thread (recording) and the adapter's worker threads (lavapipe's shaders).
  if (mainBefore !== null && mainAfter !== null && workersBefore !== null && workersAfter !== null) {
    console.log(`  CPU time: main thread ${((mainAfter - mainBefore) / 1000).toFixed(1)} s, worker threads ${((workersAfter - workersBefore) / 1000).toFixed(1)} s (${availableParallelism()} cores × ${seconds.toFixed(1)} s wall)`);
  }
  if (profiler) {
    const kernels = await profiler.collect();
    const total = kernels.reduce((s, k) => s + k.ms, 0);
    console.log(`profiled GPU time ${(total / 1000).toFixed(2)} s:`);
    for (const k of kernels) {
      const flops = roleFlops.get(k.label);
      const rate = flops ? `  ${(flops / k.ms / 1e6).toFixed(2).padStart(6)} GFLOP/s` : '';
      console.log(`  ${k.label.padEnd(40)} ${(k.ms / 1000).toFixed(2).padStart(7)} s ${((100 * k.ms) / total).toFixed(1).padStart(5)}%  ${String(k.count).padStart(6)} dispatches${rate}`);
    }
  }
}
await trainer.close();
gpu.destroy();
