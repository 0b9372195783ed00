// Trains the `tiny` model from scratch with the project's own trainer (full-parameter SFT on the
// synthetic arithmetic and countdown corpus) and writes it to models/tiny:
//   node dist/src/cli/train-tiny.js [--out models/tiny] [--steps 400] [--batch 32] [--lr 3e-3] [--seed 0]
// The same command with the same arguments reproduces the committed weights.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { noGrad } from '../autograd/grad-node.js';
import { syntheticProblem, formatAnswer, type SyntheticProblem } from '../tasks/synthetic.js';
import { generate } from '../generate/generate.js';
import { Gpu } from '../gpu/gpu.js';
import { parseHfConfig } from '../io/hf-config.js';
import { SafetensorsFile } from '../io/safetensors.js';
import { serializeSafetensors } from '../io/safetensors-writer.js';
import { initialLlamaWeights } from '../io/random-weights.js';
import { TINY_CONFIG } from '../model/tiny-config.js';
import { LlamaModel } from '../model/llama.js';
import { saveModelWeights } from '../model/save.js';
import { AdamW } from '../optim/adamw.js';
import { byteTokenizerFiles } from '../tokenizer/byte-tokenizer.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { sequenceBatch, type SequenceInput } from '../train/completion-logprobs.js';
import { sftLoss } from '../train/sft.js';
import { trainingStep } from '../train/step.js';
import { seededRandom } from '../data/random.js';
import { ProgressBar } from './progress.js';

const { values: args } = parseArgs({
  options: {
    out: { type: 'string', default: 'models/tiny' },
    steps: { type: 'string', default: '400' },
    batch: { type: 'string', default: '32' },
    lr: { type: 'string', default: '3e-3' },
    seed: { type: 'string', default: '0' },
  },
});
const steps = Number(args.steps);
const batchSize = Number(args.batch);
const seed = Number(args.seed);

mkdirSync(args.out, { recursive: true });
const { tokenizerJson, tokenizerConfig } = byteTokenizerFiles();
writeFileSync(join(args.out, 'tokenizer.json'), JSON.stringify(tokenizerJson, null, 1) + '\n');
writeFileSync(join(args.out, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig, null, 2) + '\n');
writeFileSync(join(args.out, 'config.json'), JSON.stringify(TINY_CONFIG, null, 2) + '\n');
const tokenizer = Tokenizer.fromDirectory(args.out);
const config = parseHfConfig(TINY_CONFIG, 'tiny config');

const promptIds = (p: SyntheticProblem) => tokenizer.encodeChat([{ role: 'user', content: p.prompt }], { addGenerationPrompt: true });
const example = (p: SyntheticProblem): SequenceInput => ({
  promptIds: promptIds(p),
  completionIds: tokenizer.encode(formatAnswer(p.answer) + '<|im_end|>', { addSpecialTokens: false }),
});

const gpu = await Gpu.create();
console.log(`adapter: ${gpu.adapterName}`);
const initial = SafetensorsFile.fromBytes(serializeSafetensors(initialLlamaWeights(config, seed)), 'initial tiny weights');
const model = new LlamaModel(gpu, config, initial, { trainable: true });
const params = [...model.parameters.values()];
const optimizer = new AdamW(params, { lr: Number(args.lr), betas: [0.9, 0.95], weightDecay: 0.01 });
const schedule = { kind: 'cosine' as const, lr: Number(args.lr), warmupSteps: Math.round(steps / 20), totalSteps: steps };
const train = seededRandom(seed + 1);
const progress = new ProgressBar(steps, 'tiny SFT ');
let lastLoss = NaN;
const started = Date.now();
let tokens = 0;
for (let step = 0; step < steps; step++) {
  const result = await trainingStep(gpu, {
    optimizer,
    microBatches: [Array.from({ length: batchSize }, () => example(syntheticProblem(train)))],
    loss: (sequences) => {
      const batch = sequenceBatch(gpu, sequences, 0);
      tokens += batch.ids.size;
      return { loss: sftLoss(model, batch) };
    },
    maxGradNorm: 1.0,
    schedule,
    step,
    parameterNames: [...model.parameters.keys()],
    divergedAdvice: () => 'lower --lr',
  });
  lastLoss = result.loss;
  progress.update(step + 1, { loss: lastLoss, 'tok/s': (tokens / (Date.now() - started)) * 1000 });
}

// Held-out accuracy with greedy decoding: the base rate later RL experiments start from.
const evalRand = seededRandom(seed + 1000);
const problems = Array.from({ length: 64 }, () => syntheticProblem(evalRand));
const completions = await noGrad(() =>
  generate(model, problems.map(promptIds), { maxNewTokens: 24, temperature: 0, eosTokenIds: [2] }),
);
let correct = 0;
problems.forEach((p, i) => {
  const text = tokenizer.decode(completions[i].tokens, { skipSpecialTokens: true });
  if (text.trim() === formatAnswer(p.answer)) correct++;
});
const summary = { steps, batchSize, lr: Number(args.lr), seed, finalLoss: lastLoss, heldOutExactMatch: correct / problems.length, seconds: (Date.now() - started) / 1000 };
console.log(JSON.stringify(summary));
await saveModelWeights(model, join(args.out, 'model.safetensors'), { training: JSON.stringify(summary) });
writeFileSync(join(args.out, 'training.json'), JSON.stringify(summary, null, 2) + '\n');
gpu.destroy();
