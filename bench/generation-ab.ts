// One of generate's speed-ups off, then on, alternated in one process on a GRPO step's rollout:
// the task's first prompts × G samples, sampled at the trainer's temperature until EOS or --new
// tokens. The exact ones must give the same tokens (checked); printed are wall time, the time to
// the first sampled token (the prefill), generated tokens, the rows decoded and the buffer pool's growth.
//   --toggle drop-finished   finished rows kept in the batch vs leaving it (dropFinishedRows)
//   --toggle share-prompts   every row prefilled vs each distinct prompt once (sharePrompts)
//   --toggle broadcast       products of 2 rows and more on rows16x2 vs bcast24x4 (one row on skinny
//                            in both); other kernels round differently, so samples may part ways
//   --toggle projection-store  the linears' outputs not kept vs kept for training (GenerateOptions.projections)
//   --toggle logits          the linears' outputs kept in both; the LM head's logits too when on
//   --toggle bind-groups     a bind group created per dispatch vs reused (CommandBatch.reuseBindGroups)
// --lora-rank r attaches fresh LoRA adapters to q, k, v, o, gate, up and down (B = 0: the same
// samples, the adapters' dispatches included), as a GRPO step's rollout runs them.
// Process CPU time (lavapipe's threads included) is printed next to wall time: on a shared machine it
// moves less. Round 1's first run also compiles the pipelines of row counts the short warm-up did not
// reach (seconds): take --rounds 2 or more, and read the later rounds.
//   npm run build && node dist/bench/generation-ab.js [--toggle drop-finished] [--model small]
//        [--task arithmetic] [--prompts 8] [--generations 4] [--new 128] [--rounds 1] [--lora-rank 0]
import { loadavg } from 'node:os';
import { noGrad } from '../src/autograd/grad-node.js';
import { generate, logitRows, projectionRows, type Completion, type GenerateOptions } from '../src/generate/generate.js';
import { Gpu } from '../src/gpu/gpu.js';
import { repositoryRoot } from '../src/io/repository-root.js';
import { loadModel } from '../src/model/load.js';
import { ProjectionStore } from '../src/model/projection-store.js';
import { attachLora } from '../src/nn/lora.js';
import { restoreMatmulVariantChoices } from '../src/ops/matmul-variants.js';
import { encodePrompt } from '../src/rl/evaluate.js';
import { DEFAULT_CONFIG } from '../src/rl/grpo-config.js';
import { loadTask } from '../src/tasks/load.js';
import { ROLLOUT_OPTIONS } from './rollout-options.js';
import { benchArgs } from './args.js';

const TOGGLES = {
  'drop-finished': (on: boolean): Partial<GenerateOptions> => ({ dropFinishedRows: on }),
  'share-prompts': (on: boolean): Partial<GenerateOptions> => ({ sharePrompts: on }),
  broadcast: (on: boolean): Partial<GenerateOptions> => {
    const rows = on ? 'bcast24x4' : 'rows16x2';
    restoreMatmulVariantChoices(gpu, { 'one-row': 'skinny', 'few-rows': rows, 'batch-rows': rows, 'many-rows': rows });
    return {};
  },
  'projection-store': (on: boolean): Partial<GenerateOptions> => {
    if (!on) return {};
    return { projections: projectionStore(false) };
  },
  logits: (on: boolean): Partial<GenerateOptions> => ({ projections: projectionStore(on) }),
  'bind-groups': (on: boolean): Partial<GenerateOptions> => {
    gpu.commands.reuseBindGroups = on;
    return {};
  },
};
const stores = new Map<boolean, ProjectionStore>();
/** The store of the linears' outputs for this rollout, emptied; with the logits too when `logits`. */
function projectionStore(logits: boolean): ProjectionStore {
  const maxNew = Number(args.new);
  const store = stores.get(logits) ?? new ProjectionStore(gpu, model.linears(), projectionRows(prompts, maxNew),
    logits ? { vocab: model.config.vocab_size, rows: logitRows(prompts, maxNew) } : undefined);
  stores.set(logits, store);
  store.reset();
  return store;
}

const args = benchArgs(import.meta.url, {
    toggle: { type: 'string', default: 'drop-finished' },
    model: { type: 'string', default: 'small' },
    ...ROLLOUT_OPTIONS,
    rounds: { type: 'string', default: '1' },
    'lora-rank': { type: 'string', default: '0' },
});
if (!(args.toggle! in TOGGLES)) throw new Error(`--toggle: expected one of ${Object.keys(TOGGLES).join(', ')}, got '${args.toggle}'`);
const toggle = TOGGLES[args.toggle as keyof typeof TOGGLES];
const gpu = await Gpu.create();
const { model, tokenizer } = loadModel(gpu, args.model!);
const loraRank = Number(args['lora-rank']);
if (!Number.isInteger(loraRank) || loraRank < 0) throw new Error(`--lora-rank: expected a whole number ≥ 0 (0: no adapters), got '${args['lora-rank']}'`);
if (loraRank > 0) attachLora(model, { rank: loraRank, alpha: 2 * loraRank, seed: 1 });
const rows = loadTask(args.task!, repositoryRoot(), 0).train.slice(0, Number(args.prompts));
const prompts = rows.flatMap((row) => Array.from({ length: Number(args.generations) }, () => encodePrompt(tokenizer, row)));
const eos = tokenizer.eosTokenId;
const options = { maxNewTokens: Number(args.new), temperature: DEFAULT_CONFIG.temperature, seed: 1, eosTokenIds: eos === undefined ? [] : [eos] };
console.log(`${args.model}${loraRank > 0 ? ` + LoRA r ${loraRank}` : ''} on ${gpu.adapterName}: ${rows.length} prompts × ${args.generations} samples, ≤ ${args.new} new tokens, temperature ${options.temperature}; --toggle ${args.toggle}`);
// Compiles both modes' pipelines, and makes a store's buffers before the timed rounds: Dawn clears
// each on its first use (2.9 GiB at the peer's size, seconds on a CPU adapter), once per process.
for (const on of [false, true]) await noGrad(() => generate(model, prompts.slice(0, 2), { ...options, ...toggle(on), maxNewTokens: 2 }));

const runs: Record<'off' | 'on', { ms: number[]; cpuSeconds: number[]; prefillMs: number[]; load: number[]; out: Completion[]; poolGrowth: number }> = {
  off: { ms: [], cpuSeconds: [], prefillMs: [], load: [], out: [], poolGrowth: 0 },
  on: { ms: [], cpuSeconds: [], prefillMs: [], load: [], out: [], poolGrowth: 0 },
};
for (let round = 0; round < Number(args.rounds); round++) {
  for (const mode of ['off', 'on'] as const) {
    runs[mode].load.push(loadavg()[0]);
    const allocated = gpu.pool.allocatedBytes;
    const cpu = process.cpuUsage();
    const start = performance.now();
    let prefillMs = 0;
    const onStep = (step: number) => void (step === 1 && (prefillMs = performance.now() - start));
    const out = await noGrad(() => generate(model, prompts, { ...options, ...toggle(mode === 'on'), onStep }));
    runs[mode].ms.push(performance.now() - start);
    const used = process.cpuUsage(cpu);
    runs[mode].cpuSeconds.push((used.user + used.system) / 1e6);
    runs[mode].prefillMs.push(prefillMs);
    runs[mode].poolGrowth = Math.max(runs[mode].poolGrowth, gpu.pool.allocatedBytes - allocated);
    runs[mode].out = out;
    console.log(`round ${round + 1} ${args.toggle} ${mode}: ${(runs[mode].ms.at(-1)! / 1000).toFixed(1)} s (CPU ${runs[mode].cpuSeconds.at(-1)!.toFixed(1)} s), to the first token ${(prefillMs / 1000).toFixed(1)} s (load average ${runs[mode].load.at(-1)!.toFixed(1)} at start)`);
  }
}
const generated = runs.on.out.reduce((n, c) => n + c.tokens.length, 0);
const steps = Math.max(...runs.on.out.map((c) => c.tokens.length));
const same = runs.off.out.filter((c, i) => c.tokens.join() === runs.on.out[i].tokens.join()).length;
const best = (ms: number[]) => Math.min(...ms) / 1000;
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
console.log(`generated ${generated} tokens in ${steps} decode steps (${prompts.length * steps} row-steps if no row left early); ${same} of ${prompts.length} sequences identical in both modes`);
for (const mode of ['off', 'on'] as const) {
  const r = runs[mode];
  const meanCpu = r.cpuSeconds.reduce((a, b) => a + b, 0) / r.cpuSeconds.length;
  console.log(`${args.toggle} ${mode}: best ${best(r.ms).toFixed(1)} s, ${(generated / best(r.ms)).toFixed(1)} tokens/s, mean CPU ${meanCpu.toFixed(1)} s, to the first token best ${best(r.prefillMs).toFixed(1)} s; pool growth ${mib(r.poolGrowth)} MiB`);
}
console.log(`speed-up ${(best(runs.off.ms) / best(runs.on.ms)).toFixed(2)}× (best of ${args.rounds} round(s) each, alternated)`);
console.log(`reproduce: npm run build && node dist/bench/generation-ab.js ${process.argv.slice(2).join(' ')}`);
gpu.destroy();
