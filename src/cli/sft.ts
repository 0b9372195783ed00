// Supervised fine-tuning on prompt/completion pairs — the warm-up before RFT (pass the adapter to
// train.js --init-adapter) and the baseline of the RFT-vs-SFT comparison:
//   node sft.js --model small --data pairs.jsonl [--lora-rank 8 | --full] [--steps 100] [--batch 8]
//        [--learning-rate 2e-4] [--task arithmetic] [--out-dir runs/sft [--overwrite]] [--seed 0]
// Rows: {"prompt": ..., "completion": ..., "system"?: ...}. The loss covers the completion and the
// end-of-turn token. With --task, the held-out prompts are scored before and after training.
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { backward } from '../autograd/backward.js';
import { readPromptRows } from '../data/jsonl.js';
import { Gpu } from '../gpu/gpu.js';
import { repositoryRoot } from '../io/repository-root.js';
import { loadModel } from '../model/load.js';
import { saveModelWeights } from '../model/save.js';
import { attachLora } from '../nn/lora.js';
import { tuneMatmul } from '../ops/matmul-variants.js';
import { AdamW } from '../optim/adamw.js';
import { clipGradNorm } from '../optim/grad-norm.js';
import { learningRate } from '../optim/lr-schedule.js';
import { buildReward, loadRewardConfig } from '../rewards/config.js';
import { seededRandom } from '../rewards/tasks/random.js';
import { TritonRunner } from '../rewards/triton-runner.js';
import { encodePrompt, evaluateHeldOut } from '../rl/evaluate.js';
import { prepareRunFolder } from '../rl/run-folder.js';
import { RunLog } from '../rl/run-log.js';
import { loadTask } from '../rl/tasks.js';
import { sequenceBatch, type SequenceInput } from '../rl/completion-logprobs.js';
import { sftLoss } from '../train/sft.js';
import { ProgressBar } from './progress.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'small' },
    data: { type: 'string' },
    full: { type: 'boolean', default: false },
    'lora-rank': { type: 'string', default: '8' },
    'lora-alpha': { type: 'string', default: '16' },
    steps: { type: 'string', default: '100' },
    batch: { type: 'string', default: '8' },
    'learning-rate': { type: 'string', default: '2e-4' },
    'max-grad-norm': { type: 'string', default: '1' },
    task: { type: 'string' },
    'reward-config': { type: 'string' },
    'eval-prompts': { type: 'string', default: '32' },
    'max-new-tokens': { type: 'string', default: '64' },
    'out-dir': { type: 'string', default: 'runs/sft' },
    overwrite: { type: 'boolean', default: false },
    seed: { type: 'string', default: '0' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help || !args.data) {
  console.log(readFileSync(new URL(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n'));
  process.exit(args.help ? 0 : 1);
}
const steps = Number(args.steps);
const batchSize = Number(args.batch);
const outDir = args['out-dir']!;
const root = repositoryRoot();
const rows = readPromptRows(args.data);
rows.forEach((row, i) => {
  if (typeof row.completion !== 'string') throw new Error(`${args.data}: row ${i + 1} has no "completion" string`);
});

const releaseRunFolder = prepareRunFolder(outDir, { resume: false, overwrite: args.overwrite, flag: '--out-dir' });

const gpu = await Gpu.create();
const loaded = loadModel(gpu, args.model!, { trainable: args.full });
await tuneMatmul(gpu);
const { model, tokenizer } = loaded;
const lora = args.full ? null : attachLora(model, { rank: Number(args['lora-rank']), alpha: Number(args['lora-alpha']), seed: Number(args.seed) });
const params = lora ? lora.parameters() : [...model.parameters.values()];
const optimizer = new AdamW(params, { lr: Number(args['learning-rate']), betas: [0.9, 0.99], weightDecay: 0 });
const endOfTurn = tokenizer.eosTokenId;
const examples: SequenceInput[] = rows.map((row) => ({
  promptIds: encodePrompt(tokenizer, row),
  completionIds: [...tokenizer.encode(String(row.completion), { addSpecialTokens: false }), ...(endOfTurn === undefined ? [] : [endOfTurn])],
}));

const tritonRunner = new TritonRunner({ repoRoot: root });
const task = args.task ? loadTask(args.task, root, Number(args['eval-prompts'])) : null;
const rewardSource = args['reward-config'] ?? task?.rewardConfig ?? null;
const reward = rewardSource === null ? null : typeof rewardSource === 'string' ? loadRewardConfig(rewardSource, { tritonRunner }) : buildReward(rewardSource, { baseDir: root, tritonRunner });
const log = new RunLog(outDir);
const evaluate = async (step: number) => {
  if (!task || !reward) return;
  if (lora) lora.training = false;
  const result = await evaluateHeldOut(loaded, task.eval, reward, Number(args['max-new-tokens']));
  log.metrics({ step, 'eval/reward': result.reward, 'eval/pass@1': result.passAt1 });
  console.error(`step ${step}: held-out reward ${result.reward.toFixed(3)}, pass@1 ${result.passAt1.toFixed(3)}`);
};

await evaluate(0);
const random = seededRandom(Number(args.seed));
const progress = new ProgressBar(steps, 'SFT ', 1);
const schedule = { kind: 'cosine' as const, lr: Number(args['learning-rate']), warmupSteps: Math.round(steps / 20), totalSteps: steps };
for (let step = 0; step < steps; step++) {
  if (lora) lora.training = true;
  const picked = Array.from({ length: batchSize }, () => examples[Math.floor(random() * examples.length)]);
  const loss = gpu.tidy(() => {
    const batch = sequenceBatch(gpu, picked);
    const l = sftLoss(model, batch);
    backward(l);
    clipGradNorm(params.map((p) => p.grad!), Number(args['max-grad-norm']));
    optimizer.step(learningRate(schedule, step));
    optimizer.zeroGrad();
    return l;
  });
  const value = (await loss.toArray())[0];
  loss.dispose();
  if (!Number.isFinite(value)) throw new Error(`SFT step ${step + 1}: loss ${value}; training diverged (lower --learning-rate)`);
  log.metrics({ step: step + 1, loss: value });
  progress.update(step + 1, { loss: value });
}
await evaluate(steps);
mkdirSync(outDir, { recursive: true });
if (lora) {
  await lora.save(join(outDir, 'adapter'), args.model!);
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
