// Writes with any registered model (or a checkpoint path) and reports prefill and decode speed:
//   node generate.js --model small --prompt "What is 2+2?" [--batch 8] [--max-new-tokens 64]
//        [--temperature 0.7] [--top-k 0] [--top-p 1] [--min-p 0] [--seed 0] [--raw] [--dtype f16]
import { noGrad } from '../autograd/grad-node.js';
import { checkGenerationBatch } from '../generate/batch-limit.js';
import { generate } from '../generate/generate.js';
import { Gpu } from '../gpu/gpu.js';
import type { SettingSchema } from '../io/settings-schema.js';
import { loadModel } from '../model/load.js';
import { GRPO_SETTINGS } from '../rl/grpo-config.js';
import { noChatTemplate } from '../rl/preflight.js';
import { EXIT_USAGE, parseCommand } from './options.js';

interface GenerateSettings {
  model: string;
  prompt?: string[];
  system?: string;
  raw: boolean;
  batch: number;
  maxNewTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  seed: number;
  stop?: string[];
  dtype: 'f32' | 'f16';
}

const text = { type: 'array', items: { type: 'string', minLength: 1 } } as const;
const GENERATE_SETTINGS: Readonly<Record<keyof GenerateSettings, SettingSchema>> = {
  model: GRPO_SETTINGS.model,
  prompt: text,
  system: { type: 'string' },
  raw: { type: 'boolean' },
  batch: { type: 'integer', minimum: 1 },
  maxNewTokens: GRPO_SETTINGS.maxNewTokens,
  temperature: GRPO_SETTINGS.temperature,
  topK: GRPO_SETTINGS.topK,
  topP: GRPO_SETTINGS.topP,
  minP: GRPO_SETTINGS.minP,
  seed: GRPO_SETTINGS.seed,
  stop: text,
  dtype: { type: 'string', enum: ['f32', 'f16'] },
};

const { values: args } = parseCommand<GenerateSettings>({
  usage: 'usage: node generate.js --model small|tiny|PATH --prompt TEXT [--prompt TEXT …] [--flag value …]',
  schema: GENERATE_SETTINGS,
  defaults: { model: 'small', raw: false, batch: 1, maxNewTokens: 64, temperature: 0.7, topK: 0, topP: 1, minP: 0, seed: 0, dtype: 'f32' },
  help: {
    model: 'registered model (small, tiny) or a checkpoint path',
    prompt: 'a prompt (repeatable)',
    system: 'system message',
    raw: 'no chat template',
    batch: 'repeat the prompts to a batch of this many sequences',
    maxNewTokens: 'maximum completion length',
    temperature: 'sampling temperature (0 = greedy)',
    topK: 'top-k sampling (0 = off)',
    topP: 'nucleus sampling (1 = off)',
    minP: 'min-p sampling (0 = off)',
    seed: 'sampling seed',
    stop: 'a stop string (repeatable)',
    dtype: 'storage of the weight matrices on the GPU (f32 or f16)',
  },
  repeatable: ['prompt', 'stop'],
});

const gpu = await Gpu.create();
const loadStart = performance.now();
const { model, tokenizer } = loadModel(gpu, args.model, { dtype: args.dtype });
await gpu.sync();
console.error(`${args.model} on ${gpu.adapterName}: loaded in ${((performance.now() - loadStart) / 1000).toFixed(1)} s`);

if (!args.raw && !tokenizer.chatTemplate) {
  const missing = noChatTemplate(args.model);
  if (args.system !== undefined) {
    console.error(`${missing}, so --system cannot be placed; leave it out, or pass --raw and write the prompt whole`);
    process.exit(EXIT_USAGE);
  }
  console.error(`warning: ${missing}; prompts are fed as plain text`);
}
const texts = args.prompt?.length ? args.prompt : ['Write a haiku about GPUs.'];
const encode = (text: string) =>
  args.raw || !tokenizer.chatTemplate
    ? tokenizer.encode(text)
    : tokenizer.encodeChat([...(args.system ? [{ role: 'system', content: args.system }] : []), { role: 'user', content: text }], {
        addGenerationPrompt: true,
      });
const batch = Math.max(args.batch, texts.length);
const encoded = texts.map(encode);
const prompts = Array.from({ length: batch }, (_, i) => encoded[i % texts.length]);
try {
  checkGenerationBatch('--batch', batch, model.config, gpu.device.limits, prompts.reduce((n, p) => Math.max(n, p.length), 0), args.maxNewTokens);
} catch (error) {
  console.error((error as Error).message);
  process.exit(EXIT_USAGE);
}

const start = performance.now();
let firstStep = 0;
let afterFirst = 0;
const completions = await noGrad(() =>
  generate(model, prompts, {
    maxNewTokens: args.maxNewTokens,
    temperature: args.temperature,
    topK: args.topK,
    topP: args.topP,
    minP: args.minP,
    seed: args.seed,
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
