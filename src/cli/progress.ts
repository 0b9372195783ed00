import { isTerminal } from './quiet-launch.js';

/**
 * A one-line progress bar with live metrics and what the current step is doing: redrawn in place on
 * a terminal; printed as plain lines when output goes to a file or CI log (every `logEvery` steps,
 * and the step's latest status STATUS_EVERY_S seconds after the last line, so a long phase, such as
 * a first step compiling its kernels, still shows what it is doing).
 */
export class ProgressBar {
  private readonly started = Date.now();
  private updates = 0;
  private done: number;
  private metrics: Readonly<Record<string, string | number>> = {};
  private lastPrinted = this.started;
  /** A status not printed yet (file or CI log), and the timer that will print it. */
  private pending: string | null = null;
  private timer: NodeJS.Timeout | null = null;

  /** `firstStep`: steps already done when this process started (a resumed run), left out of the rate. */
  constructor(
    private readonly total: number,
    private readonly label = '',
    private readonly logEvery = 10,
    private readonly firstStep = 0,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {
    this.done = firstStep;
  }

  /** A step is done: its metrics replace the last ones and its status is dropped. */
  update(done: number, metrics: Readonly<Record<string, string | number>> = {}): void {
    this.updates++;
    this.done = done;
    this.metrics = metrics;
    this.pending = null;
    const line = this.line();
    if (isTerminal(this.out)) this.out.write(`\r\x1b[2K${line}${done >= this.total ? '\n' : ''}`);
    else if (this.updates % this.logEvery === 0 || done >= this.total) this.print(line);
  }

  /** What the step under way is doing now (e.g. "sampling, 120 tokens"), after the last step's metrics; nothing once the last step is done. */
  status(text: string): void {
    if (this.done >= this.total) return;
    if (isTerminal(this.out)) {
      this.out.write(`\r\x1b[2K${this.line()} | ${text}`);
      return;
    }
    this.pending = text;
    this.schedule();
  }

  /** Prints the pending status if the last line is STATUS_EVERY_S old, else sets a timer for when it will be (checked again then: a step's line may have come since). */
  private schedule(): void {
    const wait = this.lastPrinted + STATUS_EVERY_S * 1000 - Date.now();
    if (wait <= 0) this.printPending();
    else if (!this.timer) {
      // Unref'd: a pending status never keeps the process alive.
      this.timer = setTimeout(() => {
        this.timer = null;
        if (this.pending !== null) this.schedule();
      }, wait).unref();
    }
  }

  private printPending(): void {
    if (this.pending === null || this.done >= this.total) return;
    this.print(`${this.line()} | ${this.pending}`);
    this.pending = null;
  }

  private print(line: string): void {
    this.out.write(line + '\n');
    this.lastPrinted = Date.now();
  }

  private line(): string {
    const elapsed = (Date.now() - this.started) / 1000;
    const doneHere = this.done - this.firstStep;
    const eta = doneHere > 0 ? (elapsed / doneHere) * (this.total - this.done) : NaN;
    const fields = Object.entries(this.metrics).map(([k, v]) => `${k} ${typeof v === 'number' ? formatNumber(v) : v}`);
    const width = 24;
    const filled = Math.round((width * this.done) / Math.max(1, this.total));
    const bar = `[${'='.repeat(filled)}${filled < width ? '>' : ''}${' '.repeat(Math.max(0, width - filled - 1))}]`;
    return `${this.label}${bar} ${this.done}/${this.total} ${fields.length ? `${fields.join(' | ')} | ` : ''}${formatDuration(elapsed)} elapsed, ETA ${formatDuration(eta)}`;
  }
}

/** On a file or CI log, a step's latest status is printed this long after the last line. */
const STATUS_EVERY_S = 30;

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
