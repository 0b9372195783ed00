// Prefill and decode speed of a model at several batch sizes, with the GPU time per kernel of one
// decode step (timestamp queries) and the bytes of weights each decode step must read:
//   npm run build && node dist/bench/generate.js [--model small] [--batches 1,8] [--prompt 32] [--new 32] [--dtype f32]
//        [--lora-rank 0] [--skip-profile]
// --lora-rank r > 0 attaches LoRA adapters of rank r to all seven projections first, as a GRPO
// rollout decodes; --skip-profile leaves out the profiled decode steps.
import { availableParallelism } from 'node:os';
import { noGrad } from '../src/autograd/grad-node.js';
import { generate } from '../src/generate/generate.js';
import { Gpu } from '../src/gpu/gpu.js';
import { KernelProfiler } from '../src/gpu/profiler.js';
import { loadModel } from '../src/model/load.js';
import { attachLora } from '../src/nn/lora.js';
import { benchArgs } from './args.js';
import { mainThreadCpuMs, workerCpuMs } from './timing.js';

const args = benchArgs(import.meta.url, {
    model: { type: 'string', default: 'small' },
    batches: { type: 'string', default: '1,8' },
    prompt: { type: 'string', default: '32' },
    new: { type: 'string', default: '32' },
    dtype: { type: 'string', default: 'f32' },
    'lora-rank': { type: 'string', default: '0' },
    'skip-profile': { type: 'boolean', default: false },
});
const dtype = args.dtype === 'f16' ? 'f16' : 'f32';
const gpu = await Gpu.create({ disabledToggles: ['timestamp_quantization'] });
const { model } = loadModel(gpu, args.model!, { dtype });
let weightBytes = 0;
for (const t of model.parameters.values()) weightBytes += t.byteLength;
const loraRank = Number(args['lora-rank']);
if (loraRank > 0) attachLora(model, { rank: loraRank, alpha: 2 * loraRank });
const adapters = loraRank > 0 ? `, LoRA r ${loraRank} on all seven projections` : '';
console.log(`${args.model} (${dtype} matrices, ${(weightBytes / 2 ** 20).toFixed(0)} MiB of weights${adapters}) on ${gpu.adapterName}`);
const promptLength = Number(args.prompt);
const newTokens = Number(args.new);

for (const batch of args.batches!.split(',').map(Number)) {
  const prompts = Array.from({ length: batch }, (_, b) => Array.from({ length: promptLength }, (_, t) => 100 + ((b * 31 + t * 7) % 1000)));
  await noGrad(() => generate(model, prompts, { maxNewTokens: 2, temperature: 0, eosTokenIds: [] })); // compile pipelines
  let first = 0;
  // CPU time of the JavaScript thread (recording, waiting on read-backs) and of the adapter's worker threads (on a CPU adapter, the kernels) over the decode steps.
  let cpuAtFirst: [number | null, number | null] = [null, null];
  const start = performance.now();
  await noGrad(() =>
    generate(model, prompts, {
      maxNewTokens: newTokens,
      temperature: 0,
      eosTokenIds: [],
      onStep: (s) => {
        if (s !== 1) return;
        first = performance.now();
        cpuAtFirst = [mainThreadCpuMs(), workerCpuMs()];
      },
    }),
  );
  const end = performance.now();
  const [mainEnd, workersEnd] = [mainThreadCpuMs(), workerCpuMs()];
  const prefill = (batch * promptLength) / ((first - start) / 1000);
  const decodeSteps = newTokens - 1;
  const stepMs = (end - first) / decodeSteps;
  // Each decode step reads every weight once (the whole batch shares the read).
  const gbps = weightBytes / (stepMs / 1000) / 1e9;
  console.log(
    `batch ${batch}: prefill ${prefill.toFixed(1)} tokens/s; decode ${((batch * 1000) / stepMs).toFixed(1)} tokens/s ` +
      `(${stepMs.toFixed(0)} ms/step, weights read at ${gbps.toFixed(2)} GB/s)`,
  );
  const [mainFirst, workersFirst] = cpuAtFirst;
  if (mainFirst !== null && workersFirst !== null && mainEnd !== null && workersEnd !== null) {
    const perStep = (ms: number) => (ms / decodeSteps).toFixed(0);
    console.log(`  decode CPU time per step: main thread ${perStep(mainEnd - mainFirst)} ms, worker threads ${perStep(workersEnd - workersFirst)} ms (${availableParallelism()} cores × ${stepMs.toFixed(0)} ms wall)`);
  }
  if (!args['skip-profile']) {
    const profiler = new KernelProfiler(gpu.device);
    gpu.commands.profiler = profiler;
    await noGrad(() => generate(model, prompts, { maxNewTokens: 3, temperature: 0, eosTokenIds: [] }));
    gpu.commands.profiler = null;
    const kernels = await profiler.collect();
    const total = kernels.reduce((s, k) => s + k.ms, 0);
    for (const k of kernels.slice(0, 8)) console.log(`    ${k.label.padEnd(64)} ${k.ms.toFixed(1).padStart(8)} ms ${((100 * k.ms) / total).toFixed(1).padStart(5)}%  ×${k.count}`);
  }
}
console.log(`reproduce: npm run build && node dist/bench/generate.js ${process.argv.slice(2).join(' ')}`);
gpu.destroy();
