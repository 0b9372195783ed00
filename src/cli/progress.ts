import { isTerminal } from './quiet-launch.js';

/**
 * A one-line progress bar with live metrics: redrawn in place on a terminal, printed as plain
 * lines (every `logEvery` updates) when output goes to a file or CI log.
 */
export class ProgressBar {
  private readonly started = Date.now();
  private updates = 0;

  /** `firstStep`: steps already done when this process started (a resumed run), left out of the rate. */
  constructor(
    private readonly total: number,
    private readonly label = '',
    private readonly logEvery = 10,
    private readonly firstStep = 0,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {}

  update(done: number, metrics: Readonly<Record<string, string | number>> = {}): void {
    this.updates++;
    const elapsed = (Date.now() - this.started) / 1000;
    const doneHere = done - this.firstStep;
    const eta = doneHere > 0 ? (elapsed / doneHere) * (this.total - done) : NaN;
    const fields = Object.entries(metrics).map(([k, v]) => `${k} ${typeof v === 'number' ? formatNumber(v) : v}`);
    const width = 24;
    const filled = Math.round((width * done) / Math.max(1, this.total));
    const bar = `[${'='.repeat(filled)}${filled < width ? '>' : ''}${' '.repeat(Math.max(0, width - filled - 1))}]`;
    const line = `${this.label}${bar} ${done}/${this.total} ${fields.join(' | ')} | ${formatDuration(elapsed)} elapsed, ETA ${formatDuration(eta)}`;
    if (isTerminal(this.out)) this.out.write(`\r\x1b[2K${line}${done >= this.total ? '\n' : ''}`);
    else if (this.updates % this.logEvery === 0 || done >= this.total) this.out.write(line + '\n');
  }
}

/** Start-up stages, one line each with the time since the command started. */
export class StageLog {
  private readonly started = Date.now();

  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {}

  readonly stage = (name: string): void => {
    this.out.write(`[${formatDuration((Date.now() - this.started) / 1000).padStart(6)}] ${name}\n`);
  };
}

function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(2) : v.toFixed(a < 1 ? 4 : 2);
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  // Round once, so 1559.7 s reads 26m00s, not 25m60s.
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
