// Dispatches per decoder layer: the difference between the same forward (and backward) on a model
// of L + 1 and of L layers, with LoRA (r 8) on q, k, v, o, gate, up, down as in a GRPO step. Counted,
// not timed: the widths are small (random weights of a SmolLM2-like shape scaled down); the
// number of dispatches does not depend on them, but on the matmul kernel: the broadcast kernel
// carries LoRA's h·Bᵀ in the base product's dispatch, the rows kernel runs it as a product of its
// own. Both are counted (the trainer's choice per number of rows is the tuned or default one).
//   npm run build && node dist/bench/dispatches.js
import { backward } from '../src/autograd/backward.js';
import { noGrad } from '../src/autograd/grad-node.js';
import { Gpu } from '../src/gpu/gpu.js';
import { parseHfConfig } from '../src/io/hf-config.js';
import { initialLlamaWeights } from '../src/io/random-weights.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { serializeSafetensors } from '../src/io/safetensors-writer.js';
import { KVCache } from '../src/model/kv-cache.js';
import { LlamaModel } from '../src/model/llama.js';
import { attachLora } from '../src/nn/lora.js';
import { forceMatmulVariant, variantSupported, type MatmulVariantName } from '../src/ops/matmul-variants.js';
import { benchArgs } from './args.js';

benchArgs(import.meta.url, {});
const gpu = await Gpu.create();
const [batch, promptLength] = [4, 12];

function modelWith(layers: number): LlamaModel {
  const config = parseHfConfig(
    {
      architectures: ['LlamaForCausalLM'], hidden_size: 64, intermediate_size: 96, num_hidden_layers: layers,
      num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, vocab_size: 300, rms_norm_eps: 1e-5,
      rope_theta: 10000, max_position_embeddings: 64, tie_word_embeddings: true,
    },
    'dispatch-count config',
  );
  const model = new LlamaModel(gpu, config, SafetensorsFile.fromBytes(serializeSafetensors(initialLlamaWeights(config, 1))));
  attachLora(model, { rank: 8, alpha: 16 });
  return model;
}

const u32 = (values: number[], shape: number[]) => gpu.tensor(values, shape, 'u32');
const counted = (fn: () => void): number => {
  const before = gpu.commands.dispatchCount;
  gpu.tidy(fn);
  return gpu.commands.dispatchCount - before;
};

/** Dispatches of a prefill, one decode step (LoRA on), and a training forward and backward. */
function counts(model: LlamaModel) {
  const cache = new KVCache(gpu, model.config, batch, promptLength + 1);
  const rows = (n: number) => Array.from({ length: batch * n }, (_, i) => (i * 7) % 300);
  const positions = (n: number, from = 0) => Array.from({ length: batch * n }, (_, i) => from + (i % n));
  const prefill = counted(() => noGrad(() => void model.forward(u32(rows(promptLength), [batch, promptLength]), { positions: u32(positions(promptLength), [batch, promptLength]), cache })));
  const decode = counted(() => noGrad(() => void model.forward(u32(rows(1), [batch, 1]), { positions: u32(positions(1, promptLength), [batch, 1]), cache })));
  cache.dispose();
  let forward = 0;
  const train = () =>
    counted(() => {
      const start = gpu.commands.dispatchCount;
      const hidden = model.forward(u32(rows(promptLength), [batch, promptLength]), { positions: u32(positions(promptLength), [batch, promptLength]) });
      forward = gpu.commands.dispatchCount - start;
      backward(hidden);
    }) - forward;
  // The first backward of a step creates the parameters' gradients; later micro-batches add to them.
  const firstBackward = train();
  const laterBackward = train();
  return { prefill, decode, forward, 'backward, first micro-batch': firstBackward, 'backward, later ones': laterBackward };
}

const variants = (['rows16x2', 'bcast24x4'] as MatmulVariantName[]).filter((v) => variantSupported(gpu, v));
const perLayer = variants.map((variant) => {
  forceMatmulVariant(gpu, variant);
  const [small, large] = [counts(modelWith(2)), counts(modelWith(3))];
  forceMatmulVariant(gpu, undefined);
  return Object.fromEntries(Object.keys(small).map((key) => [key, large[key as keyof typeof small] - small[key as keyof typeof small]]));
});
console.log('dispatches per decoder layer (LoRA r 8 on q, k, v, o, gate, up, down), by the matmul kernel that runs the products:');
console.log(`  ${''.padEnd(28)} ${variants.map((v) => v.padStart(10)).join('')}`);
for (const key of Object.keys(perLayer[0])) console.log(`  ${key.padEnd(28)} ${perLayer.map((counted) => String(counted[key]).padStart(10)).join('')}`);
console.log('reproduce: npm run build && node dist/bench/dispatches.js');
gpu.destroy();
