// Supervised fine-tuning on prompt/completion pairs — the warm-up before RFT (pass the adapter to
// train.js --init-adapter) and the baseline of the RFT-vs-SFT comparison:
//   node sft.js --model small --data pairs.jsonl [--lora-rank 8 [--base-dtype auto] | --full] [--steps 100] [--batch 8 [--micro-batch-size 4]]
//        [--learning-rate 2e-4] [--task arithmetic [--skip-eval-at-start]] [--out-dir runs/sft [--overwrite]] [--seed 0]
// Rows: {"prompt": ..., "completion": ..., "system"?: ...}. The loss covers the completion and the
// end-of-turn token. With --task, the held-out prompts are scored before and after training. With LoRA
// each distinct prompt of a micro-batch is computed once and only the completion positions reach the
// LM head, as in train.js; the frozen base is stored as train.js stores it (--base-dtype).
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readPromptRows, rowSource } from '../data/jsonl.js';
import { Gpu } from '../gpu/gpu.js';
import { repositoryRoot } from '../io/repository-root.js';
import type { SettingSchema } from '../io/settings-schema.js';
import { loadModel } from '../model/load.js';
import { saveModelWeights } from '../model/save.js';
import { isFrozenHead } from '../nn/lm-head-logprobs.js';
import { attachLora } from '../nn/lora.js';
import { tuneMatmul } from '../ops/matmul-variants.js';
import { AdamW } from '../optim/adamw.js';
import { buildReward, loadRewardConfig } from '../rewards/config.js';
import { seededRandom } from '../data/random.js';
import { TritonRunner } from '../rewards/triton-runner.js';
import { encodePrompt, evalMetrics, evaluateHeldOut } from '../rl/evaluate.js';
import { prepareRunFolder } from '../rl/run-folder.js';
import { RunLog } from '../rl/run-log.js';
import { loadTask } from '../tasks/load.js';
import { sequenceBatch, sharedPromptBatch, type SequenceInput } from '../train/completion-logprobs.js';
import { sftLoss } from '../train/sft.js';
import { splitMicroBatches, trainingStep } from '../train/step.js';
import { GRPO_SETTINGS, resolveBaseDtype } from '../rl/grpo-config.js';
import { openingComment, parseCommand, refuseOnError } from './options.js';
import { ProgressBar } from './progress.js';

interface SftSettings {
  model: string;
  data: string;
  full: boolean;
  loraRank: number;
  loraAlpha: number;
  baseDtype: 'auto' | 'f32' | 'f16';
  steps: number;
  batch: number;
  microBatchSize?: number;
  learningRate: number;
  maxGradNorm: number;
  task?: string;
  rewardConfig?: string;
  evalPrompts: number;
  skipEvalAtStart: boolean;
  maxNewTokens: number;
  outDir: string;
  overwrite: boolean;
  seed: number;
}

const SFT_SETTINGS: Readonly<Record<keyof SftSettings, SettingSchema>> = {
  model: GRPO_SETTINGS.model,
  data: { type: 'string', minLength: 1 },
  full: { type: 'boolean' },
  loraRank: GRPO_SETTINGS.loraRank,
  loraAlpha: GRPO_SETTINGS.loraAlpha,
  baseDtype: GRPO_SETTINGS.baseDtype,
  steps: { type: 'integer', minimum: 1 },
  batch: { type: 'integer', minimum: 1 },
  microBatchSize: GRPO_SETTINGS.microBatchSize,
  learningRate: GRPO_SETTINGS.learningRate,
  maxGradNorm: GRPO_SETTINGS.maxGradNorm,
  task: GRPO_SETTINGS.task,
  rewardConfig: GRPO_SETTINGS.rewardConfig,
  evalPrompts: GRPO_SETTINGS.evalPrompts,
  skipEvalAtStart: GRPO_SETTINGS.skipEvalAtStart,
  maxNewTokens: GRPO_SETTINGS.maxNewTokens,
  outDir: GRPO_SETTINGS.outDir,
  overwrite: GRPO_SETTINGS.overwrite,
  seed: GRPO_SETTINGS.seed,
};

const { values: args } = parseCommand<SftSettings>({
  usage: openingComment(import.meta.url),
  schema: SFT_SETTINGS,
  defaults: { model: 'small', full: false, loraRank: 8, loraAlpha: 16, baseDtype: 'auto', steps: 100, batch: 8, learningRate: 2e-4, maxGradNorm: 1, evalPrompts: 32, skipEvalAtStart: false, maxNewTokens: 64, outDir: 'runs/sft', overwrite: false, seed: 0 },
  help: {
    model: 'registered model (small, tiny) or a checkpoint path',
    data: 'JSONL of {"prompt", "completion", "system"?} rows',
    full: 'train every weight instead of LoRA adapters',
    loraRank: 'LoRA rank r',
    loraAlpha: 'LoRA alpha (scale alpha/r)',
    baseDtype: 'storage of the frozen base with LoRA: auto (f16 on a CPU adapter with shader-f16, as train.js), f32 or f16; --full trains in f32',
    steps: 'optimizer steps',
    batch: 'sequences per step',
    microBatchSize: 'sequences per forward/backward (gradient accumulation); default: the whole batch',
    learningRate: 'peak learning rate (cosine decay, 5% warmup)',
    maxGradNorm: 'clip the global gradient norm to this',
    task: 'score the task’s held-out prompts before and after training',
    rewardConfig: 'reward config JSON for that scoring; default: the task’s own',
    evalPrompts: 'held-out prompts scored',
    skipEvalAtStart: 'score them after training only (the starting model’s score, when another run has it)',
    maxNewTokens: 'maximum length of the scored answers',
    outDir: 'output folder (metrics.jsonl, curves.svg, adapter/ or model/)',
    overwrite: 'delete the run --out-dir holds (as a whole) and start afresh',
    seed: 'seed of LoRA init and batch order',
  },
  required: ['data'],
  check: (values) => {
    if (values.full && values.baseDtype === 'f16') throw new Error('--full trains every weight in f32: --base-dtype f16 is for a frozen base (LoRA)');
  },
});
const { steps, batch: batchSize, outDir } = args;
const root = repositoryRoot();
const { rows, releaseRunFolder } = await refuseOnError(() => {
  const read = readPromptRows(args.data);
  for (const row of read) if (typeof row.completion !== 'string') throw new Error(`${rowSource(row)}: the row has no "completion" string`);
  return { rows: read, releaseRunFolder: prepareRunFolder(outDir, { overwrite: args.overwrite, flag: '--out-dir' }) };
});

const gpu = await Gpu.create();
const loaded = loadModel(gpu, args.model, args.full ? { trainable: true } : { dtype: resolveBaseDtype(args.baseDtype, gpu) });
await tuneMatmul(gpu);
const { model, tokenizer } = loaded;
const lora = args.full ? null : attachLora(model, { rank: args.loraRank, alpha: args.loraAlpha, seed: args.seed });
const params = lora ? lora.parameters() : [...model.parameters.values()];
const optimizer = new AdamW(params, { lr: args.learningRate, betas: [0.9, 0.99], weightDecay: 0 });
const endOfTurn = tokenizer.eosTokenId;
const examples: SequenceInput[] = rows.map((row) => ({
  promptIds: encodePrompt(tokenizer, row),
  completionIds: [...tokenizer.encode(String(row.completion), { addSpecialTokens: false }), ...(endOfTurn === undefined ? [] : [endOfTurn])],
}));
// A trained LM head needs a micro-batch's logits whole, and one buffer binding holds at most this much.
if (args.full) {
  await refuseOnError(() => {
    const micro = args.microBatchSize ?? batchSize;
    const positions = Math.max(...examples.map((e) => e.promptIds.length + e.completionIds.length));
    const perSequence = positions * model.config.vocab_size * 4;
    const limit = gpu.device.limits.maxStorageBufferBindingSize;
    if (micro * perSequence <= limit) return;
    releaseRunFolder();
    const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
    const fits = Math.floor(limit / perSequence);
    throw new Error(
      `--full trains the LM head, which needs a micro-batch's logits in one buffer: ${micro} sequences × ${positions} positions × ${model.config.vocab_size} words × 4 bytes = ` +
        `${mib(micro * perSequence)}, above this device's ${mib(limit)}; ${fits ? `use --micro-batch-size ${fits} or less` : 'the longest example alone does not fit: shorten it'}`,
    );
  });
}

const tritonRunner = new TritonRunner({ repoRoot: root });
const task = args.task ? loadTask(args.task, root, args.evalPrompts) : null;
const rewardSource = args.rewardConfig ?? task?.rewardConfig ?? null;
const reward = rewardSource === null ? null : typeof rewardSource === 'string' ? loadRewardConfig(rewardSource, { tritonRunner }) : buildReward(rewardSource, { baseDir: root, tritonRunner });
const log = new RunLog(outDir);
const evaluate = async (step: number) => {
  if (!task || !reward) return;
  if (lora) lora.training = false;
  const result = await evaluateHeldOut(loaded, task.eval, reward, args.maxNewTokens);
  log.metrics(evalMetrics(step, result));
  log.evalCompletions(step, result.completions);
  console.error(`step ${step}: held-out reward ${result.reward.toFixed(3)}, pass@1 ${result.passAt1.toFixed(3)}`);
};

if (!args.skipEvalAtStart) await evaluate(0);
const random = seededRandom(args.seed);
const progress = new ProgressBar(steps, 'SFT ', 1);
const schedule = { kind: 'cosine' as const, lr: args.learningRate, warmupSteps: Math.round(steps / 20), totalSteps: steps };
const completionTokens = (batch: readonly SequenceInput[]) => batch.reduce((n, s) => n + s.completionIds.length, 0);
for (let step = 0; step < steps; step++) {
  if (lora) lora.training = true;
  // Drawn with replacement, then in example order: a prompt drawn twice is computed once (sharedPromptBatch shares neighbours).
  const drawn = Array.from({ length: batchSize }, () => Math.floor(random() * examples.length));
  const picked = drawn.sort((a, b) => a - b).map((i) => examples[i]);
  const stepTokens = completionTokens(picked);
  const result = await trainingStep(gpu, {
    optimizer,
    microBatches: splitMicroBatches(picked, args.microBatchSize ?? batchSize),
    loss: (micro) => ({ loss: sftLoss(model, (isFrozenHead(model.lmHead) ? sharedPromptBatch : sequenceBatch)(gpu, micro), completionTokens(micro) / stepTokens) }),
    maxGradNorm: args.maxGradNorm,
    schedule,
    step,
    parameterNames: lora ? undefined : [...model.parameters.keys()],
    divergedAdvice: () => 'lower --learning-rate',
  });
  log.metrics({ step: step + 1, loss: result.loss, grad_norm: result.gradNorm, learning_rate: result.learningRate });
  progress.update(step + 1, { loss: result.loss });
}
await evaluate(steps);
mkdirSync(outDir, { recursive: true });
if (lora) {
  await lora.save(join(outDir, 'adapter'), args.model);
  console.error(`adapter (PEFT format) in ${join(outDir, 'adapter')}; continue with RL: node train.js --model ${args.model} --init-adapter ${join(outDir, 'adapter')}`);
} else {
  const modelDir = join(outDir, 'model');
  mkdirSync(modelDir, { recursive: true });
  await saveModelWeights(model, join(modelDir, 'model.safetensors'));
  writeFileSync(join(modelDir, 'config.json'), JSON.stringify(loaded.resolved.config, null, 2) + '\n');
  if (loaded.resolved.tokenizer.format === 'hf-directory') {
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
      const from = join(loaded.resolved.tokenizer.path, f);
      if (existsSync(from)) copyFileSync(from, join(modelDir, f));
    }
  }
  console.error(`full model in ${modelDir}`);
}
log.plot();
await reward?.close();
await tritonRunner.close();
releaseRunFolder();
gpu.destroy();
