import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { backward } from '../src/autograd/backward.js';
import { noGrad } from '../src/autograd/grad-node.js';
import { readHfConfig } from '../src/io/hf-config.js';
import { openWeights } from '../src/io/weight-source.js';
import { LlamaModel, type LoadOptions } from '../src/model/llama.js';
import { attachLora, loadLora, mergeLora, saveMergedModel, type LoraAdapters } from '../src/nn/lora.js';
import { peftTensorName } from '../src/nn/lora-peft.js';
import { sequenceBatch } from '../src/train/completion-logprobs.js';
import { sftLoss } from '../src/train/sft.js';
import { expectClose } from './helpers/check.js';
import { expectGradientClose, SFT_LOSS_TOL, torchSftGradients } from './helpers/torch-sft-gradients.js';
import { useGpu } from './helpers/gpu.js';
import { matmulReference } from './helpers/reference-matmul.js';
import { randn } from './helpers/random.js';
import { runPython, runPythonAsync } from './python/run-python.js';

const gpu = useGpu();

// f32 on both sides; differences come from summation order only (as in model-transformers.test).
const LOGITS_TOL = { atol: 1e-4, rtol: 1e-4 };
const IDS = [
  [5, 17, 42, 99, 7, 250, 3, 11, 64],
  [8, 250, 3, 120, 31, 9, 200, 77, 4],
];

/**
 * Tiny random checkpoints from test/python/tiny_hf_reference.py; Qwen2's projections have biases,
 * Qwen3 normalizes each head of q and k and has head_dim 24 ≠ hidden/heads.
 */
const baseDirs = { llama: '', qwen2: '', qwen3: '' };
const BASE_OVERRIDES: Record<keyof typeof baseDirs, Record<string, unknown>> = { llama: {}, qwen2: {}, qwen3: { head_dim: 24 } };
const scratch = () => mkdtempSync(join(tmpdir(), 'lora-'));

function loadModel(options: LoadOptions = {}, dir = baseDirs.llama): LlamaModel {
  const reader = openWeights({ format: 'safetensors', path: join(dir, 'model.safetensors') });
  try {
    return new LlamaModel(gpu(), readHfConfig(join(dir, 'config.json')), reader, options);
  } finally {
    reader.close();
  }
}

async function ourLogits(model: LlamaModel): Promise<Float32Array> {
  const g = gpu();
  const logits = noGrad(() =>
    g.tidy(() => {
      const ids = g.tensor(IDS.flat(), [IDS.length, IDS[0].length], 'u32');
      const positions = g.tensor(IDS.flatMap((row) => row.map((_, i) => i)), [IDS.length, IDS[0].length], 'u32');
      return model.logits(model.forward(ids, { positions }));
    }),
  );
  const values = await logits.toArray();
  logits.dispose();
  return values;
}

/** transformers' logits for IDS, with PEFT's LoRA on top when an adapter directory is given. */
function referenceLogits(modelDir: string, adapterDir?: string): number[] {
  const out = runPython('peft_reference.py', ['logits', modelDir, ...(adapterDir ? [adapterDir] : [])], JSON.stringify(IDS));
  return (JSON.parse(out) as { logits: number[] }).logits;
}

/** Random non-zero B everywhere: with PEFT's zero init the adapters would be invisible. */
function randomizeB(adapters: LoraAdapters, seed: number): void {
  adapters.modules.forEach((m, i) => gpu().write(m.b, randn(m.b.size, seed + i, 0.2)));
}

beforeAll(async () => {
  // Without blocking the worker: three transformers start-ups take long on a loaded machine.
  for (const arch of ['llama', 'qwen2', 'qwen3'] as const) {
    baseDirs[arch] = scratch();
    await runPythonAsync('tiny_hf_reference.py', [arch, baseDirs[arch], JSON.stringify(BASE_OVERRIDES[arch])]);
  }
}, 300_000);

describe('LoRA on tiny random checkpoints against PEFT', () => {
  it('fresh adapters: PEFT init (A ~ U(±1/√in), seeded; B = 0), so the model is still the base', async () => {
    const model = loadModel();
    const base = await ourLogits(model);
    const adapters = attachLora(model, { rank: 4, alpha: 8, seed: 3 });
    expect(adapters.modules.map((m) => m.linear.name)).toEqual(model.linears().map((l) => l.name));
    expect(adapters.parameters()).toHaveLength(2 * 7 * model.config.num_hidden_layers);
    const first = await Promise.all(adapters.modules.map((m) => m.a.toArray()));
    for (const [i, m] of adapters.modules.entries()) {
      const bound = 1 / Math.sqrt(m.linear.inFeatures);
      expect(m.a.shape).toEqual([4, m.linear.inFeatures]);
      expect(m.b.shape).toEqual([m.linear.outFeatures, 4]);
      expect(first[i].every((v) => Math.abs(v) <= bound)).toBe(true);
      // U(−b, b) has variance b²/3; 256+ samples put the estimate within ~20%.
      const variance = first[i].reduce((s, v) => s + v * v, 0) / first[i].length;
      expect(variance / (bound * bound / 3)).toBeGreaterThan(0.75);
      expect(variance / (bound * bound / 3)).toBeLessThan(1.25);
      expect((await m.b.toArray()).every((v) => v === 0)).toBe(true);
    }
    expect(Array.from(await ourLogits(model))).toEqual(Array.from(base));
    adapters.dispose();

    const again = attachLora(model, { rank: 4, alpha: 8, seed: 3 });
    expect(Array.from(await again.modules[5].a.toArray())).toEqual(Array.from(first[5]));
    again.dispose();
    const other = attachLora(model, { rank: 4, alpha: 8, seed: 4 });
    expect(Array.from(await other.modules[5].a.toArray())).not.toEqual(Array.from(first[5]));
    other.dispose();
  });

  for (const arch of ['llama', 'qwen2', 'qwen3'] as const) {
    it(`${arch}: our adapter saved in PEFT format gives PEFT the same logits; disabled, the exact base`, async () => {
      const model = loadModel({}, baseDirs[arch]);
      const base = await ourLogits(model);
      // lora_dropout is set but inactive: dropout is off outside training, in PEFT and here.
      const adapters = attachLora(model, { rank: 4, alpha: 8, dropout: 0.1, seed: 1 });
      randomizeB(adapters, 100);
      const adapted = await ourLogits(model);
      const dir = scratch();
      await adapters.save(dir, baseDirs[arch]);

      const config = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
      expect(config).toMatchObject({ peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 4, lora_alpha: 8, lora_dropout: 0.1, bias: 'none', use_rslora: false, base_model_name_or_path: baseDirs[arch] });
      const reference = referenceLogits(baseDirs[arch], dir);
      expectClose(adapted, reference, LOGITS_TOL, 'logits with our adapter in PEFT');
      // The adapters must matter at this tolerance, or the comparison above proves nothing.
      expect(Math.max(...reference.map((v, i) => Math.abs(v - base[i])))).toBeGreaterThan(0.05);

      adapters.enabled = false;
      expect(Array.from(await ourLogits(model))).toEqual(Array.from(base));
      adapters.enabled = true;
      expect(Array.from(await ourLogits(model))).toEqual(Array.from(adapted));
      adapters.dispose();
    });
  }

  it('an adapter made by PEFT (rsLoRA, some targets) loads into our model with the same logits', async () => {
    const dir = scratch();
    runPython('peft_reference.py', ['create', baseDirs.llama, dir, '8', '16', '1', 'q_proj,v_proj,down_proj']);
    const model = loadModel();
    const adapters = loadLora(model, dir);
    expect(adapters.config).toMatchObject({ rank: 8, alpha: 16, useRslora: true });
    expect(adapters.scaling).toBeCloseTo(16 / Math.sqrt(8), 12);
    expect(adapters.modules.map((m) => m.linear.name.split('.').at(-1))).toEqual(['q_proj', 'v_proj', 'down_proj', 'q_proj', 'v_proj', 'down_proj']);
    expectClose(await ourLogits(model), referenceLogits(baseDirs.llama, dir), LOGITS_TOL, 'logits with a PEFT-made adapter');
    adapters.dispose();
  });

  it('the merged export loads in transformers as a plain checkpoint with the adapted logits', async () => {
    const model = loadModel();
    const adapters = attachLora(model, { rank: 4, alpha: 6, targetModules: ['k_proj', 'o_proj', 'gate_proj', 'up_proj'], seed: 2 });
    randomizeB(adapters, 200);
    const dir = scratch();
    copyFileSync(join(baseDirs.llama, 'config.json'), join(dir, 'config.json'));
    await saveMergedModel(adapters, join(dir, 'model.safetensors'));
    expectClose(referenceLogits(dir), await ourLogits(model), LOGITS_TOL, 'merged checkpoint in transformers');
    adapters.dispose();
  });

  it('merging onto an f16 base gives W0 (as stored in f16) + scale·B·A', async (ctx) => {
    if (!gpu().hasF16) ctx.skip();
    const model = loadModel({ dtype: 'f16' });
    const adapters = attachLora(model, { rank: 3, alpha: 5, targetModules: ['v_proj', 'down_proj'], seed: 6 });
    randomizeB(adapters, 300);
    const merged = await mergeLora(adapters);
    expect([...merged.keys()]).toEqual(adapters.modules.map((m) => `${m.linear.name}.weight`));
    for (const m of adapters.modules) {
      const [out, rank] = m.b.shape;
      const product = matmulReference(await m.b.toArray(), [out, rank], await m.a.toArray(), m.a.shape);
      const w0 = await m.linear.weight.toArray();
      const t = merged.get(`${m.linear.name}.weight`)!;
      expect(t.dtype).toBe('f32');
      // One f32 product of r ≤ 3 terms plus one add: a few ulps of values ~0.1.
      expectClose(await t.toArray(), product.map((v, i) => w0[i] + adapters.scaling * v), { atol: 1e-6, rtol: 1e-6 }, m.linear.name);
      t.dispose();
    }
    adapters.dispose();
  });
});

describe('LoRA training', () => {
  const examples = [
    { promptIds: [5, 9, 13, 2], completionIds: [7, 30, 1] },
    { promptIds: [3, 36], completionIds: [11, 12, 14, 15, 0] },
  ];

  for (const arch of ['llama', 'qwen3'] as const) {
    it(`${arch}: only A and B get gradients (the base is frozen even if loaded trainable), matching PEFT and torch autograd in float64`, async () => {
      const g = gpu();
      const model = loadModel({ trainable: true }, baseDirs[arch]);
      const adapters = attachLora(model, { rank: 2, alpha: 4, targetModules: ['q_proj', 'up_proj'], seed: 8 });
      randomizeB(adapters, 400);
      // Made outside any tidy scope, so the batch lives until the end of the test.
      const batch = sequenceBatch(g, examples);
      const loss = g.tidy(() => {
        const l = sftLoss(model, batch);
        backward(l);
        return g.keep(l);
      });
      for (const [name, p] of model.parameters) expect(p.grad, `${name} is frozen`).toBeNull();
      const adapterDir = scratch();
      await adapters.save(adapterDir, baseDirs[arch]);
      const torch = await torchSftGradients(batch, baseDirs[arch], adapterDir);

      expectClose([await g.readScalar(loss)], [torch.loss], SFT_LOSS_TOL, 'loss');
      expect(Object.keys(torch.grads)).toHaveLength(adapters.parameters().length);
      for (const m of adapters.modules) {
        for (const [matrix, p] of [['lora_A', m.a], ['lora_B', m.b]] as const) {
          const name = peftTensorName(m.linear.name, matrix);
          expect(p.grad, name).not.toBeNull();
          expectGradientClose(await p.grad!.toArray(), torch.grads[name], name);
        }
      }
      loss.dispose();
      adapters.dispose();
      for (const t of [batch.ids, batch.positions, batch.targets, batch.mask]) t.dispose();
    });
  }

  it('dropout is on only while training, and replays with the same seed and stream', async () => {
    const model = loadModel();
    const adapters = attachLora(model, { rank: 4, alpha: 8, dropout: 0.3, seed: 12 });
    randomizeB(adapters, 500);
    const evaluation = await ourLogits(model);
    expect(Array.from(await ourLogits(model))).toEqual(Array.from(evaluation));
    expect(adapters.dropoutStream).toBe(0);

    adapters.training = true;
    const first = await ourLogits(model);
    expect(adapters.dropoutStream).toBe(adapters.modules.length);
    const second = await ourLogits(model);
    expect(Array.from(second)).not.toEqual(Array.from(first));
    expect(Array.from(first)).not.toEqual(Array.from(evaluation));
    adapters.dropoutStream = 0;
    expect(Array.from(await ourLogits(model))).toEqual(Array.from(first));
    adapters.dispose();

    // Another model with the same seed draws the same masks.
    const twin = attachLora(model, { rank: 4, alpha: 8, dropout: 0.3, seed: 12 });
    randomizeB(twin, 500);
    twin.training = true;
    expect(Array.from(await ourLogits(model))).toEqual(Array.from(first));
    twin.training = false;
    expect(Array.from(await ourLogits(model))).toEqual(Array.from(evaluation));
    twin.dispose();
  });
});
