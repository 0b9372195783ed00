import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chartSvg, trailingMean, type Panel } from '../report/svg-chart.js';

/** Steps averaged in the reward's trend line: one step's mean over a few completions is noisy. */
const TREND_WINDOW = 5;

export type MetricsRow = Readonly<Record<string, number | string>>;

/**
 * The run's files in outDir: metrics.jsonl (one row per step, TRL's metric names), completions.jsonl
 * (sampled completions with every reward component), and curves.svg (reward, KL, loss, eval).
 */
export class RunLog {
  readonly metricsPath: string;
  readonly completionsPath: string;
  readonly plotPath: string;

  constructor(readonly outDir: string) {
    mkdirSync(outDir, { recursive: true });
    this.metricsPath = join(outDir, 'metrics.jsonl');
    this.completionsPath = join(outDir, 'completions.jsonl');
    this.plotPath = join(outDir, 'curves.svg');
  }

  /** Drops rows past `step` (a resumed run rewrites what the killed one logged after its checkpoint). */
  truncateAfter(step: number): void {
    for (const path of [this.metricsPath, this.completionsPath]) {
      if (!existsSync(path)) continue;
      const kept = readFileSync(path, 'utf8')
        .split('\n')
        .filter((line) => line.trim() && (JSON.parse(line) as { step: number }).step <= step);
      writeFileSync(path, kept.map((l) => l + '\n').join(''));
    }
  }

  metrics(row: MetricsRow): void {
    appendFileSync(this.metricsPath, JSON.stringify(row) + '\n');
  }

  completions(rows: readonly Record<string, unknown>[]): void {
    appendFileSync(this.completionsPath, rows.map((r) => JSON.stringify(r) + '\n').join(''));
  }

  readMetrics(): MetricsRow[] {
    if (!existsSync(this.metricsPath)) return [];
    return readFileSync(this.metricsPath, 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as MetricsRow);
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
