import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomically } from '../io/atomic-file.js';
import { chartSvg, trailingMean, type Panel } from '../report/svg-chart.js';

/** Steps averaged in the reward's trend line: one step's mean over a few completions is noisy. */
const TREND_WINDOW = 5;

export type MetricsRow = Readonly<Record<string, number | string>>;

/**
 * The run's files in outDir: metrics.jsonl (one row per step, TRL's metric names), completions.jsonl
 * (sampled completions with every reward component), eval-completions.jsonl (each held-out
 * evaluation's greedy completions, likewise), and curves.svg (reward, KL, loss, eval).
 */
export class RunLog {
  readonly metricsPath: string;
  readonly completionsPath: string;
  readonly evalCompletionsPath: string;
  readonly plotPath: string;

  constructor(
    readonly outDir: string,
    /** Where notes about repaired files go (a torn last line dropped). */
    private readonly warn: (message: string) => void = (message) => console.error(message),
  ) {
    mkdirSync(outDir, { recursive: true });
    this.metricsPath = join(outDir, 'metrics.jsonl');
    this.completionsPath = join(outDir, 'completions.jsonl');
    this.evalCompletionsPath = join(outDir, 'eval-completions.jsonl');
    this.plotPath = join(outDir, 'curves.svg');
  }

  /**
   * Drops rows past `step` (a resumed run rewrites what the killed one logged after its checkpoint).
   * The file is replaced atomically, so a kill here leaves the old log whole.
   */
  truncateAfter(step: number): void {
    for (const path of [this.metricsPath, this.completionsPath, this.evalCompletionsPath]) {
      if (!existsSync(path)) continue;
      const kept = this.readRows(path).filter((row) => Number(row.step) <= step);
      writeFileAtomically(path, kept.map((row) => JSON.stringify(row) + '\n').join(''));
    }
  }

  metrics(row: MetricsRow): void {
    appendFileSync(this.metricsPath, JSON.stringify(row) + '\n');
  }

  completions(rows: readonly Record<string, unknown>[]): void {
    appendFileSync(this.completionsPath, rows.map((r) => JSON.stringify(r) + '\n').join(''));
  }

  /** The greedy completions of the held-out evaluation after `step` optimizer steps. */
  evalCompletions(step: number, rows: readonly object[]): void {
    appendFileSync(this.evalCompletionsPath, rows.map((r) => JSON.stringify({ step, ...r }) + '\n').join(''));
  }

  readMetrics(): MetricsRow[] {
    return existsSync(this.metricsPath) ? (this.readRows(this.metricsPath) as MetricsRow[]) : [];
  }

  /**
   * The rows of a JSONL log. A last line that does not parse is the torn end of an append cut short
   * (a kill or power loss): it is dropped with a warning. A bad line anywhere else is an error.
   */
  private readRows(path: string): Record<string, unknown>[] {
    const lines = readFileSync(path, 'utf8').split('\n');
    let last = lines.length - 1;
    while (last >= 0 && !lines[last].trim()) last--;
    const rows: Record<string, unknown>[] = [];
    lines.forEach((line, i) => {
      if (!line.trim()) return;
      try {
        rows.push(JSON.parse(line) as Record<string, unknown>);
      } catch (error) {
        if (i !== last) throw new Error(`${path}:${i + 1}: not valid JSON (${(error as Error).message})`);
        this.warn(`${path}:${i + 1}: dropped a torn last line (the run was stopped while writing it)`);
      }
    });
    return rows;
  }

  /** Redraws curves.svg from metrics.jsonl. */
  plot(): void {
    const rows = this.readMetrics();
    const series = (key: string, name = key) => ({
      name,
      points: rows.filter((r) => typeof r[key] === 'number').map((r) => [Number(r.step), Number(r[key])] as const),
    });
    const rewardKeys = [...new Set(rows.flatMap((r) => Object.keys(r)))].filter((k) => /^rewards\/.+\/mean$/.test(k));
    const panels: Panel[] = [
      {
        title: 'reward (mean over completions)',
        series: [
          series('reward'),
          { name: `reward, mean of ${TREND_WINDOW} steps`, points: trailingMean(series('reward').points, TREND_WINDOW) },
          ...rewardKeys.map((k) => series(k, k.slice(8, -5))),
        ],
      },
      { title: 'validation', series: [series('eval/reward', 'mean reward'), series('eval/pass@1', 'pass@1')] },
      { title: 'loss', series: [series('loss')] },
      { title: 'KL to the base model', series: [series('kl')] },
      { title: 'entropy', series: [series('entropy')] },
      { title: 'completion length (tokens)', series: [series('completions/mean_length')] },
    ];
    writeFileSync(this.plotPath, chartSvg(panels));
  }
}
