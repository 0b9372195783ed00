import { spawn } from 'node:child_process';
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { useGpu } from './helpers/gpu.js';
import { metrics, newDir, prepareTinyRun, runNode, runTrain, SFT, trainArgs, type TinyRun } from './helpers/train-cli.js';
import { REPO_ROOT } from './python/run-python.js';

// train.js end to end on a small random model, with a reward whose scores vary between
// completions (so every step really updates the adapter): the share of digits in the answer.
let tiny: TinyRun;
const args = (outDir: string, extra: string[] = []) => trainArgs(tiny, outDir, extra);
const run = (outDir: string, extra: string[] = []) => runTrain(tiny, outDir, extra);
const adapterBytes = (dir: string, step: number) => readFileSync(join(dir, `checkpoint-${step}`, 'adapter_model.safetensors'));

describe('train.js', () => {
  const gpu = useGpu();
  beforeAll(() => {
    tiny = prepareTinyRun();
  });

  let straight = '';
  it('trains, logs TRL-named metrics, writes checkpoints and a plot', async () => {
    straight = newDir('grpo-');
    const { status, stderr } = await run(straight);
    expect(status, stderr).toBe(0);
    // Start-up shows each stage as it begins, with the time since the command started.
    const stages = [...stderr.matchAll(/^\[\s*\d+[smh0-9]*\] (.+)$/gm)].map((m) => m[1]);
    expect(stages[0]).toBe('opening the WebGPU adapter');
    expect(stages).toContain('loading model ' + tiny.model);
    expect(stages.at(-1)).toBe('training');
    const rows = metrics(straight);
    expect(rows.map((r) => r.step)).toEqual([0, 1, 2, 3, 4]);
    for (const key of ['reward', 'reward_std', 'rewards/digits/mean', 'frac_reward_zero_std', 'entropy', 'loss', 'grad_norm', 'clip_ratio/region_mean', 'completions/mean_length', 'completions/clipped_ratio']) {
      expect(rows[1][key], key).toBeTypeOf('number');
    }
    expect(rows.some((r) => r.grad_norm > 0), 'the adapter receives gradients').toBe(true);
    expect(rows[2]['eval/reward']).toBeTypeOf('number');
    for (const step of [2, 4]) expect(existsSync(join(straight, `checkpoint-${step}`, 'adapter_config.json'))).toBe(true);
    expect(readFileSync(join(straight, 'curves.svg'), 'utf8')).toMatch(/^<svg[\s\S]*polyline/);
    expect(readFileSync(join(straight, 'completions.jsonl'), 'utf8')).toContain('"digits"');
  });

  it('a run killed mid-way resumes bit for bit', async () => {
    const dir = newDir('grpo-killed-');
    // Kill the process (no chance to clean up) once the step-2 checkpoint exists.
    await new Promise<void>((resolve) => {
      const child = spawn(process.execPath, args(dir), { env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' }, stdio: 'ignore' });
      const poll = setInterval(() => {
        if (existsSync(join(dir, 'checkpoint-2', 'trainer_state.json'))) child.kill('SIGKILL');
      }, 50);
      child.on('exit', () => {
        clearInterval(poll);
        resolve();
      });
    });
    expect(existsSync(join(dir, 'checkpoint-4'))).toBe(false);
    const { status, stderr } = await run(dir, ['--resume']);
    expect(status, stderr).toBe(0);
    expect(stderr).toContain('resuming at step 2');
    expect(adapterBytes(dir, 4).equals(adapterBytes(straight, 4))).toBe(true);
    expect(metrics(dir).map((r) => r.loss)).toEqual(metrics(straight).map((r) => r.loss));
  });

  it('refuses to resume with different settings, and stops cleanly when training diverges', async () => {
    const changed = await run(straight, ['--resume', '--learning-rate', '0.5']);
    expect(changed.status).not.toBe(0);
    expect(changed.stderr).toMatch(/different settings \(--learning-rate 0.02 vs 0.5\)/);
    const dir = newDir('grpo-diverge-');
    const diverged = await run(dir, ['--learning-rate', '1e30', '--max-grad-norm', '1e30', '--steps', '4']);
    expect(diverged.status, diverged.stderr).toBe(2);
    expect(diverged.stderr).toMatch(/training diverged/);
  });

  it('without --micro-batch-size a CPU adapter picks it from the memory available, and a resumed run keeps its own', async () => {
    const withoutMicro = (outDir: string, extra: string[] = []) => {
      const all = args(outDir, extra);
      const at = all.indexOf('--micro-batch-size');
      return [...all.slice(0, at), ...all.slice(at + 2)];
    };
    const picked = newDir('grpo-micro-');
    const fresh = await runNode(withoutMicro(picked, ['--steps', '2']));
    expect(fresh.status, fresh.stderr).toBe(0);
    // 2 prompts × 4 completions of the tiny model fit in any machine's memory: one micro-batch.
    expect(fresh.stderr).toMatch(/memory: micro-batch 8 \(the largest of the step's 8 sequences whose estimate fits half the memory available, [\d.]+ GiB; --micro-batch-size to choose\)/);
    const state = JSON.parse(readFileSync(join(picked, 'checkpoint-2', 'trainer_state.json'), 'utf8'));
    expect(state.config.microBatchSize).toBe(8);
    // The first run chose 3: resumed without the flag it goes on with 3, bit for bit.
    const resumed = newDir('grpo-micro-resumed-');
    cpSync(straight, resumed, { recursive: true });
    rmSync(join(resumed, 'checkpoint-4'), { recursive: true });
    const again = await runNode(withoutMicro(resumed, ['--resume']));
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).toContain('resuming at step 2');
    expect(again.stderr).toMatch(/memory: micro-batch 3, /);
    expect(adapterBytes(resumed, 4).equals(adapterBytes(straight, 4))).toBe(true);
  });

  it('shared and repeated prompt forwards give the same step, with less work shared (micro-batches split groups)', async () => {
    // Learning rate 0: both steps of the rollout see the same weights, so the second one's ratio
    // against the cached old log-probs and the KL against the cached reference log-probs must match too.
    const same = ['--steps', '2', '--num-iterations', '2', '--beta', '0.1', '--learning-rate', '0', '--lora-dropout', '0', '--eval-every', '100', '--eval-prompts', '1', '--save-every', '100'];
    const rows = [];
    for (const mode of ['shared', 'repeated'] as const) {
      const dir = newDir(`grpo-${mode}-`);
      const { status, stderr } = await run(dir, [...same, '--prompt-forward', mode]);
      expect(status, stderr).toBe(0);
      rows.push(metrics(dir).filter((r) => r.step > 0 && 'loss' in r));
    }
    const [shared, repeated] = rows;
    expect(shared).toHaveLength(2);
    for (const [i, row] of repeated.entries()) {
      for (const key of ['loss', 'grad_norm', 'kl', 'entropy']) {
        expect(row[key], key).toBeTypeOf('number');
        expect(Math.abs(shared[i][key] - row[key]), `step ${row.step} ${key}: ${shared[i][key]} vs ${row[key]}`).toBeLessThanOrEqual(1e-5 * Math.abs(row[key]) + 1e-7);
      }
      expect(shared[i]['tokens/computed']).toBeLessThan(row['tokens/computed']);
    }
  });

  it('sft.js trains a LoRA warm-up whose adapter train.js continues from', async () => {
    const data = join(tiny.model, 'pairs.jsonl');
    writeFileSync(data, ['{"prompt": "What is 2 + 3?", "completion": "<answer>5</answer>"}', '{"prompt": "What is 4 * 3?", "completion": "<answer>12</answer>"}'].join('\n'));
    const out = newDir('sft-');
    const sft = await runNode([SFT, '--model', tiny.model, '--data', data, '--steps', '6', '--batch', '2', '--learning-rate', '0.01', '--lora-rank', '4', '--out-dir', out]);
    expect(sft.status, sft.stderr).toBe(0);
    const losses = metrics(out).map((r) => r.loss);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
    const rl = await run(newDir('grpo-warm-'), ['--steps', '1', '--init-adapter', join(out, 'adapter')]);
    expect(rl.status, rl.stderr).toBe(0);
  });

  it('sft.js with LoRA scores a batch whose logits exceed one buffer binding; --full, which needs them whole, names the micro-batch that fits', async () => {
    // A one-layer model with the small model's 49,152-word vocabulary and tiny's byte tokenizer.
    const shape = newDir('wide-vocab-');
    const tinyConfig = JSON.parse(readFileSync(join(REPO_ROOT, 'models', 'tiny', 'config.json'), 'utf8')) as Record<string, unknown>;
    const config = { ...tinyConfig, vocab_size: 49152, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 32 };
    writeFileSync(join(shape, 'config.json'), JSON.stringify(config));
    for (const file of ['tokenizer.json', 'tokenizer_config.json']) cpSync(join(REPO_ROOT, 'models', 'tiny', file), join(shape, file));
    // Sequences of about 130 byte tokens, enough of them that the batch's logits overflow a binding.
    const positions = 130;
    const batch = Math.ceil(gpu().device.limits.maxStorageBufferBindingSize / (positions * 49152 * 4)) + 1;
    const data = join(shape, 'long.jsonl');
    writeFileSync(data, `${JSON.stringify({ prompt: 'Spell it out.', completion: 'seven '.repeat(20) })}\n`.repeat(batch));
    const sftArgs = (out: string) => [SFT, '--model', `random:${shape}`, '--data', data, '--steps', '1', '--batch', String(batch), '--lora-rank', '2', '--out-dir', out];
    const lora = await runNode(sftArgs(newDir('sft-wide-')));
    expect(lora.status, lora.stderr).toBe(0);
    const full = await runNode([...sftArgs(newDir('sft-wide-full-')), '--full']);
    expect(full.status).toBe(1);
    expect(full.stderr).toMatch(new RegExp(`--full trains the LM head, which needs a micro-batch's logits in one buffer: ${batch} sequences × \\d+ positions × 49152 words .* use --micro-batch-size \\d+ or less`));
  });

  it('names the file and line of a malformed data row', async () => {
    const data = join(tiny.model, 'bad.jsonl');
    writeFileSync(data, '{"prompt": "ok"}\n{"prompt": \n');
    const result = await runNode([...args(newDir('grpo-bad-')), '--task', data]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain(`${data}:2: not valid JSON`);
  });
});
