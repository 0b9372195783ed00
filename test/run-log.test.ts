import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { RunLog } from '../src/rl/run-log.js';
import { newDir } from './helpers/train-cli.js';

// A full disk while a log is rewritten: every write puts down half its data, then fails.
const disk = vi.hoisted(() => ({ full: false }));
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  const writeFileSync: typeof fs.writeFileSync = (file, data, options) => {
    if (!disk.full) return fs.writeFileSync(file, data, options);
    const text = String(data);
    fs.writeFileSync(file, text.slice(0, text.length >> 1));
    throw enospc();
  };
  return { ...fs, default: { ...fs, writeFileSync }, writeFileSync };
});

const rows = (n: number) => Array.from({ length: n }, (_, i) => JSON.stringify({ step: i, loss: i / 10 }) + '\n').join('');

describe('RunLog', () => {
  it('a rewrite that fails half way (full disk) leaves the old log whole', () => {
    const dir = newDir('runlog-full-');
    const log = new RunLog(dir);
    writeFileSync(log.metricsPath, rows(5));
    disk.full = true;
    try {
      expect(() => log.truncateAfter(2)).toThrow(/ENOSPC/);
    } finally {
      disk.full = false;
    }
    expect(readFileSync(log.metricsPath, 'utf8')).toBe(rows(5));
    log.truncateAfter(2);
    expect(readFileSync(log.metricsPath, 'utf8')).toBe(rows(3));
  });

  it('logs each held-out evaluation\'s completions under its step and drops later ones with the metrics', () => {
    const log = new RunLog(newDir('runlog-eval-'));
    log.evalCompletions(0, [{ prompt: 'a', reward: 0 }, { prompt: 'b', reward: 1 }]);
    log.evalCompletions(5, [{ prompt: 'a', reward: 1 }]);
    log.truncateAfter(4);
    expect(readFileSync(log.evalCompletionsPath, 'utf8')).toBe('{"step":0,"prompt":"a","reward":0}\n{"step":0,"prompt":"b","reward":1}\n');
  });

  it('drops a torn last line with a warning naming file and line; a bad line elsewhere is an error', () => {
    const dir = newDir('runlog-torn-');
    const warnings: string[] = [];
    const log = new RunLog(dir, (m) => warnings.push(m));
    writeFileSync(log.metricsPath, rows(3) + '{"step": 3, "lo');
    writeFileSync(log.completionsPath, rows(3));
    log.truncateAfter(5);
    expect(warnings).toEqual([`${join(dir, 'metrics.jsonl')}:4: dropped a torn last line (the run was stopped while writing it)`]);
    expect(readFileSync(log.metricsPath, 'utf8')).toBe(rows(3));
    expect(log.readMetrics().map((r) => r.step)).toEqual([0, 1, 2]);

    writeFileSync(log.completionsPath, '{"step": 0}\n{"step": \n{"step": 1}\n');
    expect(() => log.truncateAfter(5)).toThrow(`${join(dir, 'completions.jsonl')}:2: not valid JSON`);
  });
});
