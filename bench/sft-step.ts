// Time of one full-parameter SFT step (src/train/step.ts: forward, backward, clip, AdamW, the
// read-back of loss and gradient norm) of a model built from a config, with the GPU time per
// kernel from timestamp queries:
//   npm run build && node dist/bench/sft-step.js [--batch 32] [--seq 64] [--steps 3]
import { Gpu } from '../src/gpu/gpu.js';
import { KernelProfiler } from '../src/gpu/profiler.js';
import { parseHfConfig } from '../src/io/hf-config.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { serializeSafetensors } from '../src/io/safetensors-writer.js';
import { initialLlamaWeights } from '../src/io/random-weights.js';
import { LlamaModel } from '../src/model/llama.js';
import { AdamW } from '../src/optim/adamw.js';
import { sequenceBatch } from '../src/train/completion-logprobs.js';
import { sftLoss } from '../src/train/sft.js';
import { trainingStep } from '../src/train/step.js';
import { TINY_CONFIG } from '../src/model/tiny-config.js';
import { benchArgs } from './args.js';

const args = benchArgs(import.meta.url, { batch: { type: 'string', default: '32' }, seq: { type: 'string', default: '64' }, steps: { type: 'string', default: '3' } });
const batch = Number(args.batch);
const seq = Number(args.seq);
const config = parseHfConfig(TINY_CONFIG, 'tiny config');
const gpu = await Gpu.create({ disabledToggles: ['timestamp_quantization'] });
const model = new LlamaModel(gpu, config, SafetensorsFile.fromBytes(serializeSafetensors(initialLlamaWeights(config, 0))), { trainable: true });
const params = [...model.parameters.values()];
const optimizer = new AdamW(params, { lr: 1e-3 });
const examples = Array.from({ length: batch }, (_, b) => ({
  promptIds: Array.from({ length: seq / 2 }, (_, t) => 3 + ((b * 7 + t * 13) % 250)),
  completionIds: Array.from({ length: seq / 2 }, (_, t) => 3 + ((b * 5 + t * 11) % 250)),
}));
const schedule = { kind: 'constant' as const, lr: 1e-3 };
let stepIndex = 0;
const step = () =>
  trainingStep(gpu, { optimizer, microBatches: [examples], loss: (batch) => ({ loss: sftLoss(model, sequenceBatch(gpu, batch)) }), maxGradNorm: 1, schedule, step: stepIndex++ });
await step();
const t0 = performance.now();
for (let i = 0; i < Number(args.steps); i++) await step();
const wall = (performance.now() - t0) / Number(args.steps);
const profiler = new KernelProfiler(gpu.device);
gpu.commands.profiler = profiler;
await step();
const kernels = await profiler.collect();
const gpuMs = kernels.reduce((s, k) => s + k.ms, 0);
console.log(`adapter: ${gpu.adapterName}`);
console.log(`tiny SFT step, batch ${batch} × ${seq} tokens: ${wall.toFixed(0)} ms wall (${((batch * seq) / wall * 1000).toFixed(0)} tokens/s); profiled GPU time ${gpuMs.toFixed(0)} ms`);
for (const k of kernels.slice(0, 15)) console.log(`  ${k.label.padEnd(60)} ${k.ms.toFixed(1).padStart(8)} ms ${(100 * k.ms / gpuMs).toFixed(1).padStart(5)}%  ×${k.count}`);
console.log('reproduce: npm run build && node dist/bench/sft-step.js ' + process.argv.slice(2).join(' '));
gpu.destroy();
