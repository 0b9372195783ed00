import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { ProgressBar, formatDuration } from '../src/cli/progress.js';
import { readPromptRows } from '../src/data/jsonl.js';
import { chartSvg, trailingMean } from '../src/report/svg-chart.js';

describe('training curves (SVG)', () => {
  it('draws one polyline per series with clean tick labels, and says when a panel has no data', () => {
    const svg = chartSvg([
      { title: 'loss', series: [{ name: 'loss', points: [[1, -7.45e-9], [2, 0], [3, -7.4e-9], [4, -3.7e-9]] }] },
      { title: 'reward', series: [{ name: 'a', points: [[1, 0.1], [2, 0.3]] }, { name: 'b', points: [[1, 0.2], [2, NaN]] }] },
      { title: 'KL', series: [{ name: 'kl', points: [] }] },
    ]);
    expect(svg.match(/<polyline/g)).toHaveLength(3);
    expect(svg).toContain('>0</text>');
    expect(svg).not.toMatch(/e-2\d</);
    expect(svg).toContain('no data');
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="840" height="480"/);
  });

  it('trend line: each step is the mean of the last few steps so far', () => {
    const points = [[1, 1], [2, 0], [3, 2], [5, 4]] as const;
    expect(trailingMean(points, 3)).toEqual([[1, 1], [2, 0.5], [3, 1], [5, 2]]);
    expect(trailingMean(points, 1)).toEqual(points);
    expect(trailingMean([], 5)).toEqual([]);
  });
});

describe('prompt rows (JSONL)', () => {
  it('reads rows and names the file and line of each kind of bad row', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rows-'));
    const file = (name: string, text: string) => {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    };
    expect(readPromptRows(file('ok.jsonl', '{"prompt": "a", "x": 1}\n\n{"prompt": "b", "system": "s"}\n'))).toEqual([{ prompt: 'a', x: 1 }, { prompt: 'b', system: 's' }]);
    const bad = file('bad.jsonl', '{"prompt": "a"}\n[1, 2]\n');
    expect(() => readPromptRows(bad)).toThrow(`${bad}:2: a row must be a JSON object`);
    expect(() => readPromptRows(file('empty-prompt.jsonl', '{"prompt": ""}\n'))).toThrow(/:1: "prompt" must be a non-empty string/);
    expect(() => readPromptRows(file('system.jsonl', '{"prompt": "a", "system": 3}\n'))).toThrow(/:1: "system" must be a string/);
    expect(() => readPromptRows(file('none.jsonl', '\n'))).toThrow(/no rows/);
    expect(() => readPromptRows(join(dir, 'missing.jsonl'))).toThrow(/cannot read data file/);
  });
});

describe('progress bar', () => {
  it('estimates the time left from the steps this process ran, so a resumed run is not promised an early finish', () => {
    const lines: string[] = [];
    const out = { write: (line: string) => lines.push(line) } as unknown as NodeJS.WriteStream;
    const now = vi.spyOn(Date, 'now').mockReturnValue(0);
    const resumed = new ProgressBar(30, '', 1, 10, out);
    const fresh = new ProgressBar(30, '', 1, 0, out);
    now.mockReturnValue(60_000);
    resumed.update(11);
    fresh.update(11);
    now.mockRestore();
    // 60 s for 1 step here, 19 to go; the fresh run did 11 steps in the same 60 s.
    expect(lines[0]).toMatch(/ 11\/30 .*1m00s elapsed, ETA 19m00s\n$/);
    expect(lines[1]).toMatch(/ETA 1m44s\n$/);
  });

  it('shows what a step under way is doing: in place on a terminal, its latest 30 s after the last line in a log', () => {
    const written: string[] = [];
    const stream = (isTTY: boolean) => ({ isTTY, write: (text: string) => written.push(text) }) as unknown as NodeJS.WriteStream;
    vi.useFakeTimers({ now: 0 });
    try {
      const log = new ProgressBar(20, 'GRPO ', 1, 0, stream(false));
      vi.advanceTimersByTime(10_000);
      log.status('step 1/20: sampling 4 prompts × 4, prefill');
      vi.advanceTimersByTime(19_000);
      expect(written).toEqual([]);
      // A phase that outlasts the wait is shown while it runs.
      vi.advanceTimersByTime(1_000);
      expect(written).toEqual(['GRPO [>                       ] 0/20 30s elapsed, ETA ? | step 1/20: sampling 4 prompts × 4, prefill\n']);
      vi.advanceTimersByTime(10_000);
      log.update(1, { reward: 0.5 });
      log.status('step 2/20: scoring 16 completions');
      vi.advanceTimersByTime(29_000);
      log.status('step 2/20: forward/backward, 1 of 4 micro-batches');
      expect(written.slice(1)).toEqual(['GRPO [=>                      ] 1/20 reward 0.5000 | 40s elapsed, ETA 12m40s\n']);
      // 30 s after the step's line: its latest status only.
      vi.advanceTimersByTime(1_000);
      expect(written.slice(2)).toEqual(['GRPO [=>                      ] 1/20 reward 0.5000 | 1m10s elapsed, ETA 22m10s | step 2/20: forward/backward, 1 of 4 micro-batches\n']);
      // A status the step's end overtakes is not printed after it; the next one waits 30 s from the step's line.
      log.status('step 2/20: forward/backward, 4 of 4 micro-batches');
      vi.advanceTimersByTime(5_000);
      log.update(2, { reward: 0.25 });
      vi.advanceTimersByTime(5_000);
      log.status('step 3/20: scoring 16 completions');
      vi.advanceTimersByTime(24_000);
      expect(written).toHaveLength(4);
      vi.advanceTimersByTime(1_000);
      expect(written.slice(4)).toEqual(['GRPO [==>                     ] 2/20 reward 0.2500 | 1m45s elapsed, ETA 15m45s | step 3/20: scoring 16 completions\n']);
      const terminal = new ProgressBar(20, 'GRPO ', 1, 0, stream(true));
      terminal.status('step 1/20: sampling 4 prompts × 4, 12 tokens, decode step 3 of ≤ 32');
      expect(written.at(-1)).toBe('\r\x1b[2KGRPO [>                       ] 0/20 0s elapsed, ETA ? | step 1/20: sampling 4 prompts × 4, 12 tokens, decode step 3 of ≤ 32');
      // After the last step (its checkpoint is being saved) the finished bar stays as it is.
      terminal.update(20);
      const count = written.length;
      terminal.status('step 20/20: saving a checkpoint');
      expect(written).toHaveLength(count);
    } finally {
      vi.useRealTimers();
    }
  });

  it('rounds once, so minutes never show 60 seconds', () => {
    expect([formatDuration(59.6), formatDuration(1559.7), formatDuration(3599.6), formatDuration(7322), formatDuration(NaN)]).toEqual(['1m00s', '26m00s', '1h00m', '2h02m', '?']);
  });
});
