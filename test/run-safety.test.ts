import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { metrics, newDir, prepareTinyRun, runNode, runTrain, SFT, startTrain, waitFor, type TinyRun } from './helpers/train-cli.js';

// What train.js and sft.js do with the user's work when things go wrong: a second run in the same
// folder, signals, a second writer, changed settings on resume, bad rows and broken graders.
let tiny: TinyRun;
const short = ['--steps', '2'];

describe('run safety', () => {
  beforeAll(() => {
    tiny = prepareTinyRun();
  });

  it('refuses a second run in a folder that holds one; --overwrite replaces it as a whole', () => {
    const dir = newDir('grpo-twice-');
    const first = runTrain(tiny, dir, short);
    expect(first.status, first.stderr).toBe(0);
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    const before = readFileSync(join(dir, 'metrics.jsonl'), 'utf8');

    const second = runTrain(tiny, dir, short);
    expect(second.status).not.toBe(0);
    expect(second.stderr).toMatch(/already holds a run \(checkpoint-2, completions\.jsonl, curves\.svg, metrics\.jsonl\)/);
    expect(second.stderr).toMatch(/--resume.*--overwrite/);
    expect(readFileSync(join(dir, 'metrics.jsonl'), 'utf8')).toBe(before);

    const replaced = runTrain(tiny, dir, ['--steps', '1', '--overwrite']);
    expect(replaced.status, replaced.stderr).toBe(0);
    expect(metrics(dir).map((r) => r.step)).toEqual([0, 1]);
    expect(existsSync(join(dir, 'checkpoint-2'))).toBe(false);
    expect(existsSync(join(dir, 'checkpoint-1'))).toBe(true);
    expect(readFileSync(join(dir, 'notes.txt'), 'utf8')).toBe('mine');

    const data = join(tiny.model, 'pairs.jsonl');
    writeFileSync(data, '{"prompt": "What is 2 + 3?", "completion": "<answer>5</answer>"}\n');
    const sft = (extra: string[] = []) => runNode([SFT, '--model', tiny.model, '--data', data, '--steps', '1', '--batch', '1', '--lora-rank', '2', '--out-dir', dir, ...extra]);
    expect(sft().stderr).toMatch(/already holds a run/);
    expect(sft(['--overwrite']).status).toBe(0);
    expect(existsSync(join(dir, 'adapter', 'adapter_config.json'))).toBe(true);
    expect(existsSync(join(dir, 'checkpoint-1'))).toBe(false);
  });

  it('SIGTERM finishes the step, saves a checkpoint and exits 143; leftovers of killed writes go at the next start', async () => {
    const dir = newDir('grpo-sigterm-');
    const run = startTrain(tiny, dir, ['--steps', '8', '--save-every', '100']);
    const trained = () => existsSync(join(dir, 'metrics.jsonl')) && metrics(dir).some((r) => r.step >= 1);
    await waitFor(trained);
    run.child.kill('SIGTERM');
    const { status, stderr } = await run.exited;
    expect(status, stderr).toBe(143);
    const stopped = /stopped by SIGTERM after step (\d+); newest checkpoint (\S+); continue with --resume/.exec(stderr);
    expect(stopped, stderr).not.toBeNull();
    const step = Number(stopped![1]);
    expect(step).toBeLessThan(8);
    expect(stopped![2]).toBe(join(dir, `checkpoint-${step}`));
    expect(metrics(dir).at(-1)!.step).toBe(step);

    const leftover = join(dir, '.checkpoint-9.4242.tmp');
    mkdirSync(leftover);
    writeFileSync(join(leftover, 'adapter_model.safetensors'), 'half');
    const resumed = runTrain(tiny, dir, ['--steps', '8', '--save-every', '100', '--resume']);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`resuming at step ${step}`);
    expect(existsSync(leftover)).toBe(false);
    expect(metrics(dir).map((r) => r.step).filter((s) => s > 0)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('locks the folder: a second writer is refused while the first lives; the lock of a killed run is stale', async () => {
    const dir = newDir('grpo-lock-');
    const first = startTrain(tiny, dir, ['--steps', '8', '--save-every', '1']);
    await waitFor(() => existsSync(join(dir, 'checkpoint-1', 'trainer_state.json')));
    const second = runTrain(tiny, dir, ['--steps', '8', '--overwrite']);
    expect(second.status).not.toBe(0);
    expect(second.stderr).toContain(`--out-dir ${dir} is in use by process ${first.child.pid}`);
    expect(existsSync(join(dir, 'checkpoint-1'))).toBe(true);
    first.child.kill('SIGKILL');
    await first.exited;

    const resumed = runTrain(tiny, dir, ['--steps', '8', '--save-every', '1', '--resume']);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`removing a stale lock (process ${first.child.pid} is gone)`);
    expect(existsSync(join(dir, '.run.lock'))).toBe(false);
  });

  it('resume is exact or refused: --steps with a decaying schedule, changed data files', () => {
    const cosine = newDir('grpo-cosine-');
    expect(runTrain(tiny, cosine, short).status).toBe(0);
    const longer = runTrain(tiny, cosine, ['--steps', '4', '--resume']);
    expect(longer.status).not.toBe(0);
    expect(longer.stderr).toContain('--steps 2 vs 4 (the cosine learning-rate schedule decays over --steps)');

    const constant = newDir('grpo-constant-');
    const data = join(constant, 'sums.jsonl');
    writeFileSync(data, '{"prompt": "1+2="}\n{"prompt": "3+4="}\n');
    const rows = ['--lr-schedule', 'constant', '--task', data];
    expect(runTrain(tiny, constant, [...short, ...rows]).status).toBe(0);
    const extended = runTrain(tiny, constant, ['--steps', '3', '--resume', ...rows]);
    expect(extended.status, extended.stderr).toBe(0);
    expect(metrics(constant).map((r) => r.step)).toEqual([0, 1, 2, 3]);

    writeFileSync(data, '{"prompt": "1+2="}\n{"prompt": "5+4="}\n');
    const changed = runTrain(tiny, constant, ['--steps', '4', '--resume', ...rows]);
    expect(changed.status).not.toBe(0);
    expect(changed.stderr).toContain(`${data} changed since the checkpoint`);
  });
});
