// Estimated device memory of a GRPO step with LoRA, per model and setting, from the configs alone
// (nothing is loaded; src/rl/memory-plan.ts, checked against the pool in test/memory-plan.test.ts):
//   npm run build && node dist/bench/memory.js [--model small,random:smollm2-1.7b] [--prompt 150]
//        [--prompts 8] [--generations 4] [--new 128] [--micro 4] [--rank 8]
// Prints frozen weights, adapters + optimizer, generation, activations and the peak for f32 and
// f16 weights, with and without activation recomputation. On a CPU adapter the process adds its
// own ~0.3 GiB (Dawn, LLVM, the JS heap) and, without a cap, the pool's cache.
import { parseArgs } from 'node:util';
import { CACHE_CAP_WITHOUT_SUBALLOCATION } from '../src/gpu/buffer-pool.js';
import { resolveModel } from '../src/io/model-registry.js';
import { DEFAULT_LORA_TARGETS } from '../src/nn/lora-config.js';
import { configModelShape, estimateStepMemory, formatGiB } from '../src/rl/memory-plan.js';
import { ROLLOUT_OPTIONS } from './rollout-options.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'small,random:smollm2-1.7b' },
    prompt: { type: 'string', default: '150' },
    ...ROLLOUT_OPTIONS,
    micro: { type: 'string', default: '4' },
    rank: { type: 'string', default: '8' },
  },
});
const prompts = Number(args.prompts);
const generations = Number(args.generations);
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
      const e = estimateStepMemory(model, {
        promptTokens: Number(args.prompt),
        maxNewTokens: Number(args.new),
        numGenerations: generations,
        generationBatchSize: prompts * generations,
        microBatchSize: Number(args.micro),
        sharedPrompts: true,
        recompute,
        poolCacheCap: CACHE_CAP_WITHOUT_SUBALLOCATION,
      });
      const cells = [e.frozen, e.trainable, e.generation, e.activations, e.peak].map(formatGiB);
      console.log(`| ${name} | ${(parameters / 1e9).toFixed(2)} B | ${dtype} | ${recompute ? 'on' : 'off'} | ${cells.join(' | ')} |`);
    }
  }
}
