import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { backward } from '../src/autograd/backward.js';
import { noGrad } from '../src/autograd/grad-node.js';
import { readHfConfig } from '../src/io/hf-config.js';
import { openWeights } from '../src/io/weight-source.js';
import { LlamaModel } from '../src/model/llama.js';
import { peftTensorName } from '../src/nn/lora-peft.js';
import { loadLora, type LoraAdapters } from '../src/nn/lora.js';
import { completionLogprobs, sequenceBatch, sharedPromptBatch } from '../src/train/completion-logprobs.js';
import { grpoLoss, type GrpoLossOptions } from '../src/rl/grpo-loss.js';
import { expectClose } from './helpers/check.js';
import { useGpu } from './helpers/gpu.js';
import { runPythonAsync } from './python/run-python.js';

const gpu = useGpu();

// GRPO end to end against the real thing: the same tiny Llama and PEFT adapter in transformers,
// TRL's loss, torch autograd. What is compared is the gradient of every LoRA matrix.
// Two completions of one prompt, so the shared-prompt layout has a group to share.
const sequences = [
  { promptIds: [5, 17, 42], completionIds: [99, 7, 250, 3] },
  { promptIds: [8, 250, 3, 11, 12], completionIds: [4, 4] },
  { promptIds: [8, 250, 3, 11, 12], completionIds: [9, 30, 31] },
  { promptIds: [1, 2], completionIds: [60, 61, 62, 63, 64, 65] },
  { promptIds: [77], completionIds: [2] },
];
const advantages = [1.2, -0.7, 0.3, 0.4, -0.9];
const cases: GrpoLossOptions[] = [
  { beta: 0.04, epsilonLow: 0.2, epsilonHigh: 0.28, lossType: 'grpo', importanceSampling: 'token', klEstimator: 'k3' },
  { beta: 0, epsilonLow: 0.2, epsilonHigh: 0.2, lossType: 'dapo', importanceSampling: 'token', klEstimator: 'k3', numItemsInBatch: 16 },
  { beta: 0.04, epsilonLow: 0.2, epsilonHigh: 0.2, lossType: 'dr_grpo', importanceSampling: 'sequence', klEstimator: 'k3', maxCompletionLength: 8 },
  { beta: 0, epsilonLow: 0.2, epsilonHigh: 0.2, lossType: 'bnpo', importanceSampling: 'token', klEstimator: 'k3', delta: 1.5 },
];

interface Answer {
  loss: number;
  grads: Record<string, number[]>;
}

describe('GRPO LoRA gradients against transformers + PEFT + TRL', () => {
  let modelDir = '';
  let adapterDir = '';
  let reference: Answer[];
  let model: LlamaModel;
  let lora: LoraAdapters;
  beforeAll(async () => {
    modelDir = mkdtempSync(join(tmpdir(), 'grpo-trl-model-'));
    adapterDir = mkdtempSync(join(tmpdir(), 'grpo-trl-adapter-'));
    await runPythonAsync('tiny_hf_reference.py', ['llama', modelDir]);
    await runPythonAsync('peft_reference.py', ['create', modelDir, adapterDir, '4', '8', '0', 'q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj']);
    const configs = cases.map((o) => ({
      beta: o.beta, epsilon_low: o.epsilonLow, epsilon_high: o.epsilonHigh, delta: o.delta ?? null, loss_type: o.lossType,
      importance_sampling_level: o.importanceSampling, use_bias_correction_kl: true, max_completion_length: o.maxCompletionLength ?? 8,
      num_items_in_batch: o.numItemsInBatch ?? 16, gradient_accumulation_steps: 1, steps_per_generation: 1,
      sapo_temperature_pos: 1.0, sapo_temperature_neg: 1.05, vespo_k_pos: 2.0, vespo_lambda_pos: 3.0, vespo_k_neg: 3.0, vespo_lambda_neg: 2.0,
    }));
    const request = { sequences: sequences.map((s) => ({ prompt: s.promptIds, completion: s.completionIds })), advantages, configs };
    reference = JSON.parse(await runPythonAsync('grpo_lora_reference.py', [modelDir, adapterDir], JSON.stringify(request))) as Answer[];
    const reader = openWeights({ format: 'safetensors', path: join(modelDir, 'model.safetensors') });
    model = new LlamaModel(gpu(), readHfConfig(join(modelDir, 'config.json')), reader);
    reader.close();
    lora = loadLora(model, adapterDir);
  }, 300_000);

  const layouts = { 'each prompt repeated': sequenceBatch, 'shared prompts': sharedPromptBatch };
  cases.forEach((options, k) => {
    for (const [layoutName, layout] of Object.entries(layouts)) {
      it(`${options.lossType}, ${options.importanceSampling} ratios, β = ${options.beta}${options.delta ? `, δ = ${options.delta}` : ''}, ${layoutName}`, async () => {
        const g = gpu();
        const loss = g.tidy(() => {
          const batch = layout(g, sequences);
          const ref = options.beta
            ? noGrad(() => {
                lora.enabled = false;
                const r = completionLogprobs(model, batch).logprobs;
                lora.enabled = true;
                return r;
              })
            : undefined;
          const { logprobs } = completionLogprobs(model, batch);
          const out = grpoLoss({ logprobs, refLogprobs: ref, advantages: g.tensor(advantages, [sequences.length]), mask: batch.mask }, options);
          backward(out.loss);
          return out.loss;
        });
        // f32 on both sides through a 2-layer model; summation orders differ.
        expect((await loss.toArray())[0]).toBeCloseTo(reference[k].loss, 5);
        for (const m of lora.modules) {
          for (const [matrix, t] of [['lora_A', m.a], ['lora_B', m.b]] as const) {
            const name = peftTensorName(m.linear.name, matrix);
            expectClose(await t.grad!.toArray(), reference[k].grads[name], { atol: 2e-6, rtol: 1e-3 }, name);
            t.grad!.dispose();
            t.grad = null;
          }
        }
      });
    }
  });
});
