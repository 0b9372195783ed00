import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';

export type JsonObject = Record<string, unknown>;

export interface JsonLinesProcessOptions {
  readonly command: string;
  readonly args?: readonly string[];
  readonly cwd?: string;
  /** When set, requests wait for a first message of this `type` (the child's handshake), kept as `hello`. */
  readonly readyType?: string;
  /** How long to wait for the handshake before giving up (default 120 s: the Triton runner imports torch). */
  readonly startTimeoutMs?: number;
  /** A line on stdout that is not a JSON object fails the requests in flight (default: ignored as a stray print). */
  readonly rejectNonJson?: boolean;
  /**
   * The longest request line the child reads (its newline included). A longer request is refused here: the
   * child could only answer it with an error carrying no `id`, which no request would ever receive.
   */
  readonly maxLineBytes?: number;
}

interface Pending {
  resolve(reply: JsonObject): void;
  reject(error: Error): void;
}

const STDERR_TAIL_BYTES = 4000;

/**
 * A long-lived child process that answers JSON-line requests, matched to replies by an `id` field.
 *
 * If the child dies, the requests in flight fail with its exit status and stderr tail, and the next request
 * starts a fresh child: the caller never has to restart it. Aborting a request kills the child (it may be
 * stuck on that request); the other requests in flight then fail, and the next one restarts it.
 */
export class JsonLinesProcess {
  private child?: ChildProcessWithoutNullStreams;
  private ready?: Promise<JsonObject>;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private stderrTail = '';
  private closed = false;
  /** How many times a child was started (1 after the first request). */
  starts = 0;

  constructor(private readonly options: JsonLinesProcessOptions) {}

  /** The handshake message of the current child (starting one if needed). */
  hello(): Promise<JsonObject> {
    return this.start();
  }

  async request(message: JsonObject, signal?: AbortSignal): Promise<JsonObject> {
    signal?.throwIfAborted();
    const id = this.nextId++;
    const line = `${JSON.stringify({ ...message, id })}\n`;
    const bytes = Buffer.byteLength(line);
    if (this.options.maxLineBytes !== undefined && bytes > this.options.maxLineBytes) {
      throw new Error(`request line of ${bytes} bytes exceeds the limit of ${this.options.maxLineBytes} bytes`);
    }
    await this.start();
    const child = this.child;
    if (!child) throw new Error(`${this.options.command} is not running`);
    return new Promise<JsonObject>((resolve, reject) => {
      const onAbort = () => {
        this.pending.delete(id);
        reject(new Error('request aborted'));
        this.discard(child, new Error(`${this.options.command} was killed: a request to it was aborted`));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const settle = <T>(done: (value: T) => void) => (value: T) => {
        signal?.removeEventListener('abort', onAbort);
        done(value);
      };
      this.pending.set(id, { resolve: settle(resolve), reject: settle(reject) });
      child.stdin.write(line);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.stdin.end(); // the child finishes what it was asked and exits on end of input
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  private start(): Promise<JsonObject> {
    if (this.closed) return Promise.reject(new Error(`${this.options.command} was closed`));
    if (this.ready) return this.ready;
    const child = spawn(this.options.command, [...(this.options.args ?? [])], { cwd: this.options.cwd, stdio: 'pipe' });
    this.child = child;
    this.starts++;
    this.stderrTail = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-STDERR_TAIL_BYTES);
    });
    child.stdin.on('error', () => undefined); // a write to a dead child surfaces through 'exit' instead
    let greet: ((hello: JsonObject) => void) | undefined;
    let fail: ((error: Error) => void) | undefined;
    this.ready = new Promise<JsonObject>((resolve, reject) => {
      greet = resolve;
      fail = reject;
      if (!this.options.readyType) resolve({});
    });
    const timer = setTimeout(() => {
      fail?.(new Error(`${this.options.command} sent no '${this.options.readyType}' message in time`));
      child.kill('SIGKILL');
    }, this.options.startTimeoutMs ?? 120_000);
    if (!this.options.readyType) clearTimeout(timer);
    createInterface({ input: child.stdout }).on('line', (line) => {
      const message = parse(line);
      if (!message) {
        if (this.options.rejectNonJson && line.trim()) this.failPending(new Error(`${this.options.command} printed non-JSON output: ${JSON.stringify(line.slice(0, 200))}`));
        return;
      }
      if (this.options.readyType && message.type === this.options.readyType) {
        clearTimeout(timer);
        greet?.(message);
        return;
      }
      const pending = typeof message.id === 'number' ? this.pending.get(message.id) : undefined;
      if (pending) {
        this.pending.delete(message.id as number);
        pending.resolve(message);
      }
    });
    child.on('error', (error) => this.onExit(child, `failed to start: ${error.message}`, timer, fail));
    child.on('exit', (code, signal) => this.onExit(child, `exited (${signal ?? `code ${code}`})`, timer, fail));
    return this.ready;
  }

  private onExit(child: ChildProcessWithoutNullStreams, how: string, timer: NodeJS.Timeout, fail?: (error: Error) => void): void {
    clearTimeout(timer);
    const error = new Error(`${this.options.command} ${how}${this.stderrTail ? `: ${this.stderrTail.trim().slice(-500)}` : ''}`);
    fail?.(error);
    this.discard(child, error);
  }

  /** Forget a child at once (the next request starts a new one), fail its requests, and kill it. */
  private discard(child: ChildProcessWithoutNullStreams, error: Error): void {
    child.kill('SIGKILL');
    if (this.child !== child) return;
    this.ready?.catch(() => undefined);
    this.child = undefined;
    this.ready = undefined;
    this.failPending(error);
  }

  private failPending(error: Error): void {
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
  }
}

function parse(line: string): JsonObject | undefined {
  try {
    const value: unknown = JSON.parse(line);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as JsonObject) : undefined;
  } catch {
    return undefined; // not protocol output (a stray print): ignored
  }
}
