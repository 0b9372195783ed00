import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './python/run-python.js';
import { writeRandomCheckpoint } from './helpers/tiny-checkpoint.js';

// train.js end to end on a small random model, with a reward whose scores vary between
// completions (so every step really updates the adapter): the share of digits in the answer.
let model = '';
let rewardConfig = '';
const TRAIN = join(REPO_ROOT, 'dist', 'src', 'cli', 'train.js');

function args(outDir: string, extra: string[] = []): string[] {
  return [
    TRAIN, '--model', model, '--task', 'tiny-arithmetic', '--reward-config', rewardConfig, '--out-dir', outDir,
    '--steps', '4', '--prompts-per-step', '2', '--num-generations', '4', '--max-new-tokens', '12', '--micro-batch-size', '3',
    '--eval-every', '2', '--eval-prompts', '3', '--save-every', '2', '--learning-rate', '0.02', '--lora-rank', '4', '--lora-dropout', '0.1', ...extra,
  ];
}

function run(outDir: string, extra: string[] = []) {
  const result = spawnSync(process.execPath, args(outDir, extra), { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' } });
  return { status: result.status, stderr: result.stderr };
}

const metrics = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
const adapterBytes = (dir: string, step: number) => readFileSync(join(dir, `checkpoint-${step}`, 'adapter_model.safetensors'));

describe('train.js', () => {
  beforeAll(() => {
    if (!existsSync(TRAIN)) throw new Error('dist/ is missing: npm test builds it first');
    model = writeRandomCheckpoint();
    rewardConfig = join(model, 'reward.json');
    writeFileSync(
      rewardConfig,
      JSON.stringify({ components: [{ name: 'digits', grader: { type: 'programmatic', module: './digits.mjs' } }] }),
    );
    writeFileSync(
      join(model, 'digits.mjs'),
      'export default ({ completion }) => (completion.length ? (completion.match(/[0-9]/g) ?? []).length / completion.length : 0);\n',
    );
  });

  let straight = '';
  it('trains, logs TRL-named metrics, writes checkpoints and a plot', () => {
    straight = mkdtempSync(join(tmpdir(), 'grpo-'));
    const { status, stderr } = run(straight);
    expect(status, stderr).toBe(0);
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
    const dir = mkdtempSync(join(tmpdir(), 'grpo-killed-'));
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
    const { status, stderr } = run(dir, ['--resume']);
    expect(status, stderr).toBe(0);
    expect(stderr).toContain('resuming at step 2');
    expect(adapterBytes(dir, 4).equals(adapterBytes(straight, 4))).toBe(true);
    expect(metrics(dir).map((r) => r.loss)).toEqual(metrics(straight).map((r) => r.loss));
  });

  it('refuses to resume with different settings, and stops cleanly when training diverges', () => {
    const changed = run(straight, ['--resume', '--learning-rate', '0.5']);
    expect(changed.status).not.toBe(0);
    expect(changed.stderr).toMatch(/different settings \(--learning-rate 0.02 vs 0.5\)/);
    const dir = mkdtempSync(join(tmpdir(), 'grpo-diverge-'));
    const diverged = run(dir, ['--learning-rate', '1e30', '--max-grad-norm', '1e30', '--steps', '4']);
    expect(diverged.status, diverged.stderr).toBe(2);
    expect(diverged.stderr).toMatch(/training diverged/);
  });

  it('shared and repeated prompt forwards give the same step, with less work shared (micro-batches split groups)', () => {
    // Learning rate 0: both steps of the rollout see the same weights, so the second one's ratio
    // against the cached old log-probs and the KL against the cached reference log-probs must match too.
    const same = ['--steps', '2', '--num-iterations', '2', '--beta', '0.1', '--learning-rate', '0', '--lora-dropout', '0', '--eval-every', '100', '--eval-prompts', '1', '--save-every', '100'];
    const rows = (['shared', 'repeated'] as const).map((mode) => {
      const dir = mkdtempSync(join(tmpdir(), `grpo-${mode}-`));
      const { status, stderr } = run(dir, [...same, '--prompt-forward', mode]);
      expect(status, stderr).toBe(0);
      return metrics(dir).filter((r) => r.step > 0 && 'loss' in r);
    });
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

  it('sft.js trains a LoRA warm-up whose adapter train.js continues from', () => {
    const data = join(model, 'pairs.jsonl');
    writeFileSync(data, ['{"prompt": "What is 2 + 3?", "completion": "<answer>5</answer>"}', '{"prompt": "What is 4 * 3?", "completion": "<answer>12</answer>"}'].join('\n'));
    const out = mkdtempSync(join(tmpdir(), 'sft-'));
    const sft = spawnSync(process.execPath, [join(REPO_ROOT, 'dist', 'src', 'cli', 'sft.js'), '--model', model, '--data', data, '--steps', '6', '--batch', '2', '--learning-rate', '0.01', '--lora-rank', '4', '--out-dir', out], { encoding: 'utf8' });
    expect(sft.status, sft.stderr).toBe(0);
    const losses = metrics(out).map((r) => r.loss);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
    const rl = run(mkdtempSync(join(tmpdir(), 'grpo-warm-')), ['--steps', '1', '--init-adapter', join(out, 'adapter')]);
    expect(rl.status, rl.stderr).toBe(0);
  });

  it('names the file and line of a malformed data row', () => {
    const data = join(model, 'bad.jsonl');
    writeFileSync(data, '{"prompt": "ok"}\n{"prompt": \n');
    const result = spawnSync(process.execPath, [...args(mkdtempSync(join(tmpdir(), 'grpo-bad-'))), '--task', data], { encoding: 'utf8' });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain(`${data}:2: not valid JSON`);
  });
});
