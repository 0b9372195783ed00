// Writes with any registered model (or a checkpoint path) and reports prefill and decode speed:
//   node generate.js --model small --prompt "What is 2+2?" [--batch 8] [--max-new-tokens 64]
//        [--temperature 0.7] [--top-k 0] [--top-p 1] [--min-p 0] [--seed 0] [--raw] [--dtype f16]
import { parseArgs } from 'node:util';
import { noGrad } from '../autograd/grad-node.js';
import { generate } from '../generate/generate.js';
import { Gpu } from '../gpu/gpu.js';
import { loadModel } from '../model/load.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'small' },
    prompt: { type: 'string', multiple: true },
    system: { type: 'string' },
    raw: { type: 'boolean', default: false },
    batch: { type: 'string', default: '1' },
    'max-new-tokens': { type: 'string', default: '64' },
    temperature: { type: 'string', default: '0.7' },
    'top-k': { type: 'string', default: '0' },
    'top-p': { type: 'string', default: '1' },
    'min-p': { type: 'string', default: '0' },
    seed: { type: 'string', default: '0' },
    stop: { type: 'string', multiple: true },
    dtype: { type: 'string', default: 'f32' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(`usage: node generate.js --model small|tiny|PATH --prompt TEXT [--prompt TEXT ...]
  --batch N            repeat the prompts to a batch of N sequences (default 1)
  --max-new-tokens N   (default 64)     --temperature T (0 = greedy; default 0.7)
  --top-k K --top-p P --min-p P         sampling filters (off by default)
  --seed S             sampling seed    --stop STR  stop string (repeatable)
  --system TEXT        system message   --raw       no chat template
  --dtype f32|f16      storage of the weight matrices on the GPU (default f32)`);
  process.exit(0);
}
if (args.dtype !== 'f32' && args.dtype !== 'f16') throw new Error(`--dtype must be f32 or f16, got ${args.dtype}`);

const gpu = await Gpu.create();
const loadStart = performance.now();
const { model, tokenizer } = loadModel(gpu, args.model, { dtype: args.dtype });
await gpu.sync();
console.error(`${args.model} on ${gpu.adapterName}: loaded in ${((performance.now() - loadStart) / 1000).toFixed(1)} s`);

const texts = args.prompt?.length ? args.prompt : ['Write a haiku about GPUs.'];
const encode = (text: string) =>
  args.raw || !tokenizer.chatTemplate
    ? tokenizer.encode(text)
    : tokenizer.encodeChat([...(args.system ? [{ role: 'system', content: args.system }] : []), { role: 'user', content: text }], {
        addGenerationPrompt: true,
      });
const batch = Math.max(Number(args.batch), texts.length);
const prompts = Array.from({ length: batch }, (_, i) => encode(texts[i % texts.length]));

const start = performance.now();
let firstStep = 0;
let afterFirst = 0;
const completions = await noGrad(() =>
  generate(model, prompts, {
    maxNewTokens: Number(args['max-new-tokens']),
    temperature: Number(args.temperature),
    topK: Number(args['top-k']),
    topP: Number(args['top-p']),
    minP: Number(args['min-p']),
    seed: Number(args.seed),
    eosTokenIds: tokenizer.eosTokenId === undefined ? undefined : [tokenizer.eosTokenId],
    stop: args.stop,
    decode: (ids) => tokenizer.decode(ids, { skipSpecialTokens: true }),
    onStep: (step, generated) => {
      if (step === 1) firstStep = performance.now();
      else afterFirst = generated - batch;
    },
  }),
);
const end = performance.now();
completions.forEach((c, i) => {
  console.log(`--- [${i}] ${c.tokens.length} tokens, finished by ${c.finishReason}`);
  console.log(tokenizer.decode(c.tokens, { skipSpecialTokens: true }));
});
const promptTokens = prompts.reduce((n, p) => n + p.length, 0);
const prefillS = (firstStep - start) / 1000;
const decodeS = (end - firstStep) / 1000;
console.error(
  `prefill: ${promptTokens} tokens in ${prefillS.toFixed(2)} s (${(promptTokens / prefillS).toFixed(1)} tokens/s); ` +
    `decode: ${afterFirst} tokens in ${decodeS.toFixed(2)} s (${(afterFirst / decodeS).toFixed(1)} tokens/s, batch ${batch})`,
);
gpu.destroy();
