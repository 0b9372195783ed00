import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { metrics, newDir, prepareTinyRun, runNode, runTrain, SFT, type TinyRun } from './helpers/train-cli.js';

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
});
