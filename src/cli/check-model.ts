// Says what this trainer makes of a checkpoint, and whether it computes what transformers computes:
//   npm run check-model -- PATH|small|tiny [--prompt TEXT ...] [--new-tokens N]
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { noGrad } from '../autograd/grad-node.js';
import { generate } from '../generate/generate.js';
import { Gpu } from '../gpu/gpu.js';
import type { HfModelConfig } from '../io/hf-config.js';
import { resolveModel, type ResolvedModel } from '../io/model-registry.js';
import { repositoryRoot } from '../io/repository-root.js';
import { describeRope } from '../io/rope-scaling.js';
import { elementCount } from '../io/tensor-reader.js';
import { openWeights } from '../io/weight-source.js';
import { expectedParameterShapes } from '../io/checkpoint-layout.js';
import { LlamaModel } from '../model/llama.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    prompt: { type: 'string', multiple: true },
    'new-tokens': { type: 'string', default: '8' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help || positionals.length !== 1) {
  console.log(`usage: npm run check-model -- PATH|small|tiny [--prompt TEXT ...] [--new-tokens N]
  Loads the checkpoint (a Hugging Face directory, a .gguf file or a registered name), prints what
  was recognised, and with the Python environment (.venv) compares its logits and greedy
  continuations with transformers on a few prompts. Exit status 1 when they disagree.
  --prompt TEXT     a prompt (repeatable; default: three built-in ones)
  --new-tokens N    greedy tokens generated per prompt on both sides (default 8)`);
  process.exit(args.help ? 0 : 2);
}
const newTokens = Number(args['new-tokens']);
if (!Number.isSafeInteger(newTokens) || newTokens < 0) throw new Error(`--new-tokens must be a non-negative integer, got ${args['new-tokens']}`);

const DEFAULT_PROMPTS = ['The capital of France is', 'What is 12 + 7?', 'def fibonacci(n):'];
/** f32 on both sides: logits of deep models agree to ~1e-3 of their range (summation order only). */
const LOGIT_TOLERANCE = 2e-3;

const MiB = 1024 * 1024;
const mib = (bytes: number) => `${(bytes / MiB).toFixed(bytes < 10 * MiB ? 2 : 0)} MiB`;

function ranges(indices: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < indices.length; i++) {
    let j = i;
    while (j + 1 < indices.length && indices[j + 1] === indices[j] + 1) j++;
    parts.push(i === j ? `${indices[i]}` : `${indices[i]}-${indices[j]}`);
    i = j;
  }
  return parts.join(', ');
}

function attentionKind(c: HfModelConfig): string {
  const grouping =
    c.num_key_value_heads === c.num_attention_heads ? 'MHA' : c.num_key_value_heads === 1 ? 'MQA' : `GQA (${c.num_attention_heads / c.num_key_value_heads} query heads per kv head)`;
  const heads = `${grouping}: ${c.num_attention_heads} query heads, ${c.num_key_value_heads} kv heads, head_dim ${c.head_dim}`;
  const sliding = c.layer_types.flatMap((t, i) => (t === 'sliding_attention' ? [i] : []));
  const window =
    sliding.length === 0
      ? `full causal on all ${c.num_hidden_layers} layers`
      : sliding.length === c.num_hidden_layers
        ? `sliding window ${c.sliding_window} on all ${c.num_hidden_layers} layers`
        : `sliding window ${c.sliding_window} on layers ${ranges(sliding)}, full causal on the other ${c.num_hidden_layers - sliding.length}`;
  const extras = [
    c.qk_norm ? 'per-head q/k RMSNorm' : '',
    c.attention_bias ? `biases on q/k/v${c.o_proj_bias ? '/o' : ''}` : '',
    c.mlp_bias ? 'MLP biases' : '',
  ].filter(Boolean);
  return [heads, window, ...extras].join('; ');
}

function describe(resolved: ResolvedModel): { parameters: number } {
  const c = resolved.config;
  const shapes = expectedParameterShapes(c);
  const parameters = [...shapes.values()].reduce((n, shape) => n + elementCount(shape), 0);
  const normParameters = [...shapes].filter(([name]) => name.endsWith('norm.weight') || name.endsWith('.bias')).reduce((n, [, s]) => n + elementCount(s), 0);
  const reader = openWeights(resolved.weights);
  const stored = new Map<string, number>();
  try {
    for (const name of reader.tensorNames()) stored.set(reader.info(name).dtype, (stored.get(reader.info(name).dtype) ?? 0) + 1);
  } finally {
    reader.close();
  }
  const kvBytesPerToken = c.num_hidden_layers * 2 * c.num_key_value_heads * c.head_dim * 4;
  const lines: [string, string][] = [
    ['model', `${resolved.name} (${resolved.weights.format})`],
    ['architecture', `${c.architectures[0]} (model_type ${c.model_type}): ${c.num_hidden_layers} layers, hidden ${c.hidden_size}, MLP ${c.intermediate_size} (${c.hidden_act}), vocab ${c.vocab_size}`],
    ['attention', attentionKind(c)],
    ['rope', describeRope(c.rope_theta, c.rope_scaling)],
    ['positions', `max_position_embeddings ${c.max_position_embeddings}`],
    ['head', c.tie_word_embeddings ? 'tied to the embedding' : 'separate lm_head'],
    ['dtype', `stored ${[...stored].map(([dtype, n]) => `${dtype} ×${n}`).join(', ')}; computed in f32`],
    ['parameters', `${parameters.toLocaleString('en-US')} (${(parameters / 1e6).toFixed(1)} M)`],
    [
      'memory',
      `weights ${mib(parameters * 4)} on the GPU in f32 (--base-dtype f16: ${mib((parameters - normParameters) * 2 + normParameters * 4)}); ` +
        `KV cache ${(kvBytesPerToken / 1024).toFixed(1)} KiB per token per sequence (${mib(kvBytesPerToken * 4096)} for 4,096 tokens)`,
    ],
  ];
  for (const [key, value] of lines) console.log(`${key.padEnd(12)} ${value}`);
  for (const warning of resolved.warnings) console.log(`warning      ${warning}`);
  return { parameters };
}

interface Reference {
  logits: number[][];
  greedy: number[][];
}

function argmaxRows(values: ArrayLike<number>, vocab: number): number[] {
  const rows = values.length / vocab;
  return Array.from({ length: rows }, (_, r) => {
    let best = 0;
    for (let v = 1; v < vocab; v++) if (values[r * vocab + v] > values[r * vocab + best]) best = v;
    return best;
  });
}

const resolved = resolveModel(positionals[0]);
describe(resolved);

const tokenizer = Tokenizer.fromSource(resolved.tokenizer);
const prompts = (args.prompt?.length ? args.prompt : DEFAULT_PROMPTS).map((text) => tokenizer.encode(text));
const gpu = await Gpu.create();
const reader = openWeights(resolved.weights);
let model: LlamaModel;
try {
  model = new LlamaModel(gpu, resolved.config, reader);
} finally {
  reader.close();
}
console.log(`${'loaded'.padEnd(12)} on ${gpu.adapterName}`);

const vocab = resolved.config.vocab_size;
const ours: Float32Array[] = [];
for (const ids of prompts) {
  const logits = noGrad(() =>
    gpu.tidy(() => model.logits(model.forward(gpu.tensor(ids, [1, ids.length], 'u32'), { positions: gpu.tensor(ids.map((_, i) => i), [1, ids.length], 'u32') }))),
  );
  ours.push(await logits.toArray());
  logits.dispose();
}
const ourGreedy = newTokens ? (await generate(model, prompts, { maxNewTokens: newTokens, temperature: 0, eosTokenIds: [] })).map((c) => c.tokens) : prompts.map(() => []);

const python = join(repositoryRoot(), '.venv', 'bin', 'python');
if (!existsSync(python)) {
  console.log(`transformers comparison skipped: ${python} not found (scripts/setup.sh creates it)`);
  gpu.destroy();
  process.exit(0);
}
if (resolved.weights.format === 'random') {
  console.log('transformers comparison skipped: random weights exist only here (made from the seed), transformers has none to load');
  gpu.destroy();
  process.exit(0);
}
const modelPath = resolved.weights.format === 'gguf' ? resolved.weights.path : resolved.weights.format === 'safetensors' ? dirname(resolved.weights.path) : dirname(resolved.weights.indexPath);
const reference = JSON.parse(
  execFileSync(python, [join(repositoryRoot(), 'scripts', 'transformers_logits.py'), modelPath], {
    input: JSON.stringify({ prompts, new_tokens: newTokens }),
    encoding: 'utf8',
    maxBuffer: 1 << 30,
    stdio: ['pipe', 'pipe', 'inherit'],
  }),
) as Reference;

let maxDiff = 0;
let maxLogit = 0;
let agreeing = 0;
let positions = 0;
prompts.forEach((ids, p) => {
  const theirs = reference.logits[p];
  ours[p].forEach((v, i) => {
    maxDiff = Math.max(maxDiff, Math.abs(v - theirs[i]));
    maxLogit = Math.max(maxLogit, Math.abs(theirs[i]));
  });
  const a = argmaxRows(ours[p], vocab);
  const b = argmaxRows(theirs, vocab);
  agreeing += a.filter((t, i) => t === b[i]).length;
  positions += ids.length;
});
const sameContinuations = ourGreedy.filter((tokens, p) => tokens.every((t, i) => t === reference.greedy[p][i])).length;
console.log(`logits       max |ours − transformers| ${maxDiff.toExponential(2)} (largest logit ${maxLogit.toFixed(2)}) over ${prompts.length} prompts, ${positions} positions`);
console.log(`greedy       next-token argmax agrees at ${agreeing}/${positions} positions; ${newTokens}-token greedy continuations identical for ${sameContinuations}/${prompts.length} prompts`);
// Logits within tolerance settle the forward (an argmax may still flip on a near tie); the
// continuations check generation with the KV cache.
const matches = maxDiff <= LOGIT_TOLERANCE * Math.max(1, maxLogit) && sameContinuations === prompts.length;
console.log(matches ? 'verdict      matches transformers' : 'verdict      DIFFERS from transformers');
gpu.destroy();
process.exit(matches ? 0 : 1);
