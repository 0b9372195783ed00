// Estimated device memory of a GRPO step with LoRA, per model and setting, from the configs alone
// (nothing is loaded; src/rl/memory-plan.ts, checked against the pool in test/memory-plan.test.ts):
//   npm run build && node dist/bench/memory.js [--model small,random:smollm2-1.7b] [--prompt 150]
//        [--prompts 8] [--generations 4] [--new 128] [--micro 4] [--rank 8] [--measure]
// Prints frozen weights, adapters + optimizer, generation, activations and the peak for f32 and
// f16 weights, with and without activation recomputation. On a CPU adapter the process adds its
// own ~0.3 GiB (Dawn, LLVM, the JS heap) and, without a cap, the pool's cache.
// --measure also loads each model (f32 weights) and runs one micro-batch's forward and backward of
// full-length sequences (synthetic tokens), printing the activations the pool measured next to the
// estimate, with and without recomputation: the check test/memory-plan.test.ts makes on tiny, for
// models too slow for a test.
import { CACHE_CAP_WITHOUT_SUBALLOCATION } from '../src/gpu/buffer-pool.js';
import { Gpu } from '../src/gpu/gpu.js';
import { resolveModel } from '../src/io/model-registry.js';
import { loadModel } from '../src/model/load.js';
import { DEFAULT_LORA_TARGETS } from '../src/nn/lora-config.js';
import { attachLora } from '../src/nn/lora.js';
import { measureActivations } from '../src/rl/measure-activations.js';
import { configModelShape, estimateStepMemory, formatGiB, loadedModelShape, type StepShape } from '../src/rl/memory-plan.js';
import { ROLLOUT_OPTIONS } from './rollout-options.js';
import { benchArgs } from './args.js';

const args = benchArgs(import.meta.url, {
    model: { type: 'string', default: 'small,random:smollm2-1.7b' },
    prompt: { type: 'string', default: '150' },
    ...ROLLOUT_OPTIONS,
    micro: { type: 'string', default: '4' },
    rank: { type: 'string', default: '8' },
    measure: { type: 'boolean', default: false },
});
const prompts = Number(args.prompts);
const generations = Number(args.generations);
const micro = Number(args.micro);
const stepShape = (recompute: boolean): StepShape => ({
  promptTokens: Number(args.prompt),
  maxNewTokens: Number(args.new),
  numGenerations: generations,
  generationBatchSize: prompts * generations,
  microBatchSize: micro,
  sharedPrompts: true,
  recompute,
  poolCacheCap: CACHE_CAP_WITHOUT_SUBALLOCATION,
});
console.log(
  `GRPO step: ${prompts} prompts × ${generations} completions, prompt ≤ ${args.prompt} tokens, ≤ ${args.new} new, micro-batch ${args.micro}, ` +
    `LoRA r ${args.rank} on ${DEFAULT_LORA_TARGETS.join(', ')}, shared prompts, pool cache cap ${formatGiB(CACHE_CAP_WITHOUT_SUBALLOCATION)}`,
);
console.log('| model | parameters | weights | recompute | frozen | adapters + AdamW | generation | activations | peak |');
console.log('|---|---:|---|---|---:|---:|---:|---:|---:|');
for (const name of args.model!.split(',')) {
  const { config } = resolveModel(name);
  for (const dtype of ['f32', 'f16'] as const) {
    const model = configModelShape(config, dtype, { rank: Number(args.rank), targets: DEFAULT_LORA_TARGETS, dropout: 0 });
    const parameters = model.linears.reduce((n, l) => n + l.inFeatures * l.outFeatures, 0) * config.num_hidden_layers + config.vocab_size * config.hidden_size * (config.tie_word_embeddings ? 1 : 2);
    for (const recompute of [false, true]) {
      const e = estimateStepMemory(model, stepShape(recompute));
      const cells = [e.frozen, e.trainable, e.generation, e.activations, e.peak].map(formatGiB);
      console.log(`| ${name} | ${(parameters / 1e9).toFixed(2)} B | ${dtype} | ${recompute ? 'on' : 'off'} | ${cells.join(' | ')} |`);
    }
  }
}

if (args.measure) {
  const gpu = await Gpu.create();
  console.log(`\nOne micro-batch of ${micro} sequences at full length (${args.prompt} + ${args.new} tokens), f32 weights, on ${gpu.adapterName}:`);
  console.log('| model | recompute | activations estimated | measured (pool peak) | estimate / measured |');
  console.log('|---|---|---:|---:|---:|');
  for (const name of args.model!.split(',')) {
    const { model } = loadModel(gpu, name, { dtype: 'f32' });
    const lora = attachLora(model, { rank: Number(args.rank), alpha: 2 * Number(args.rank), seed: 1 });
    // Token ids past the special ones, varied so no two rows are the same; each group shares its prompt.
    const tokens = (n: number, seed: number) => Array.from({ length: n }, (_, t) => 3 + ((seed * 7919 + t * 104729) % (model.config.vocab_size - 3)));
    const sequences = Array.from({ length: micro }, (_, i) => ({ promptIds: tokens(Number(args.prompt), Math.floor(i / generations)), completionIds: tokens(Number(args.new), 1000 + i) }));
    for (const recompute of [false, true]) {
      const measured = measureActivations(model, lora, sequences, recompute);
      await gpu.sync();
      const estimated = estimateStepMemory(loadedModelShape(model, lora), stepShape(recompute)).activations;
      console.log(`| ${name} | ${recompute ? 'on' : 'off'} | ${formatGiB(estimated)} | ${formatGiB(measured)} | ${(estimated / measured).toFixed(3)} |`);
    }
    lora.dispose();
    for (const t of model.parameters.values()) t.dispose();
  }
  gpu.destroy();
}
