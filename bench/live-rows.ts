// Rollout decoding with finished sequences kept in the batch to the end, and with them leaving it
// (generate's dropFinishedRows), alternated in one process on a GRPO step's rollout: the task's first
// prompts × G samples, sampled at the trainer's temperature until EOS or --new tokens. Both must
// give the same tokens (checked); printed are wall time, generated tokens and the rows decoded.
//   npm run build && node dist/bench/live-rows.js [--model small] [--task arithmetic] [--prompts 8]
//        [--generations 4] [--new 128] [--rounds 1]
import { parseArgs } from 'node:util';
import { noGrad } from '../src/autograd/grad-node.js';
import { generate, type Completion } from '../src/generate/generate.js';
import { Gpu } from '../src/gpu/gpu.js';
import { repositoryRoot } from '../src/io/repository-root.js';
import { loadModel } from '../src/model/load.js';
import { encodePrompt } from '../src/rl/evaluate.js';
import { DEFAULT_CONFIG } from '../src/rl/grpo-config.js';
import { loadTask } from '../src/tasks/load.js';
import { ROLLOUT_OPTIONS } from './rollout-options.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'small' },
    ...ROLLOUT_OPTIONS,
    rounds: { type: 'string', default: '1' },
  },
});
const gpu = await Gpu.create();
const { model, tokenizer } = loadModel(gpu, args.model!);
const rows = loadTask(args.task!, repositoryRoot(), 0).train.slice(0, Number(args.prompts));
const prompts = rows.flatMap((row) => Array.from({ length: Number(args.generations) }, () => encodePrompt(tokenizer, row)));
const eos = tokenizer.eosTokenId;
const options = { maxNewTokens: Number(args.new), temperature: DEFAULT_CONFIG.temperature, seed: 1, eosTokenIds: eos === undefined ? [] : [eos] };
console.log(`${args.model} on ${gpu.adapterName}: ${rows.length} prompts × ${args.generations} samples, ≤ ${args.new} new tokens, temperature ${options.temperature}`);
await noGrad(() => generate(model, prompts.slice(0, 2), { ...options, maxNewTokens: 2 })); // compile pipelines

const runs: Record<'kept' | 'dropped', { ms: number[]; out: Completion[]; poolGrowth: number }> = {
  kept: { ms: [], out: [], poolGrowth: 0 },
  dropped: { ms: [], out: [], poolGrowth: 0 },
};
for (let round = 0; round < Number(args.rounds); round++) {
  for (const mode of ['kept', 'dropped'] as const) {
    const allocated = gpu.pool.allocatedBytes;
    const start = performance.now();
    const out = await noGrad(() => generate(model, prompts, { ...options, dropFinishedRows: mode === 'dropped' }));
    runs[mode].ms.push(performance.now() - start);
    runs[mode].poolGrowth = Math.max(runs[mode].poolGrowth, gpu.pool.allocatedBytes - allocated);
    runs[mode].out = out;
  }
}
const generated = runs.dropped.out.reduce((n, c) => n + c.tokens.length, 0);
const steps = Math.max(...runs.dropped.out.map((c) => c.tokens.length));
const same = runs.kept.out.filter((c, i) => c.tokens.join() === runs.dropped.out[i].tokens.join()).length;
const best = (ms: number[]) => Math.min(...ms) / 1000;
console.log(`generated ${generated} tokens in ${steps} decode steps; ${same} of ${prompts.length} sequences identical in both modes`);
console.log(`finished rows kept:    ${best(runs.kept.ms).toFixed(1)} s (${prompts.length * steps} row-steps decoded), ${(generated / best(runs.kept.ms)).toFixed(1)} tokens/s`);
console.log(`finished rows dropped: ${best(runs.dropped.ms).toFixed(1)} s (${generated} row-steps decoded), ${(generated / best(runs.dropped.ms)).toFixed(1)} tokens/s`);
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
console.log(`GPU buffer pool growth: kept ${mib(runs.kept.poolGrowth)} MiB, dropped ${mib(runs.dropped.poolGrowth)} MiB (the cache gathered to fewer rows reuses buffers of the first size)`);
console.log(`speed-up ${(best(runs.kept.ms) / best(runs.dropped.ms)).toFixed(2)}× (best of ${args.rounds} round(s) each, alternated)`);
console.log(`reproduce: npm run build && node dist/bench/live-rows.js ${process.argv.slice(2).join(' ')}`);
gpu.destroy();
