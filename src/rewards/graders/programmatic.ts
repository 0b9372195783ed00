import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

import type { GradeResult, Grader, GradingInput } from '../types.js';

export interface ProgrammaticOptions {
  /** A JavaScript ES module (.js/.mjs), resolved against the config's directory. */
  readonly module: string;
  /** The export to call (default `default`): `(input) => number | {score, reason}`, sync or async. */
  readonly export?: string;
  readonly baseDir: string;
}

// The worker imports the user's module once and grades on request. It runs in its own thread so that a
// grader stuck in a synchronous loop can be stopped (Worker.terminate) without stopping the trainer.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const loaded = import(workerData.url).then((module) => {
  const fn = module[workerData.exportName];
  if (typeof fn !== 'function') throw new Error(workerData.url + ' exports no function named ' + workerData.exportName);
  return fn;
});
parentPort.on('message', async ({ id, input, check }) => {
  try {
    const fn = await loaded;
    const result = check ? null : await fn(input);
    parentPort.postMessage({ id, result });
  } catch (error) {
    parentPort.postMessage({ id, error: error instanceof Error ? error.message : String(error) });
  }
});
`;

interface Reply {
  readonly id: number;
  readonly result?: unknown;
  readonly error?: string;
}

/** A user's grading function loaded from a JavaScript module, run in a worker thread. */
export class ProgrammaticGrader implements Grader {
  private worker?: Worker;
  private nextId = 0;
  private readonly waiting = new Map<number, (reply: Reply) => void>();
  private readonly url: string;
  private readonly exportName: string;

  constructor(options: ProgrammaticOptions) {
    this.url = pathToFileURL(resolve(options.baseDir, options.module)).href;
    this.exportName = options.export ?? 'default';
  }

  async grade(input: GradingInput, signal: AbortSignal): Promise<GradeResult> {
    return toResult(await this.ask({ input }, signal));
  }

  /** The module imports and exports a function. */
  async check(_probe: GradingInput, signal: AbortSignal): Promise<void> {
    await this.ask({ check: true }, signal);
  }

  private async ask(message: { input?: GradingInput; check?: boolean }, signal: AbortSignal): Promise<unknown> {
    const worker = this.start();
    const id = this.nextId++;
    const reply = await new Promise<Reply>((resolveReply) => {
      this.waiting.set(id, resolveReply);
      // A stuck grader: stop its thread; the next request starts a fresh one.
      signal.addEventListener('abort', () => this.stop(worker, 'timed out'), { once: true });
      worker.postMessage({ id, ...message });
    });
    if (reply.error !== undefined) throw new Error(reply.error);
    return reply.result;
  }

  async close(): Promise<void> {
    if (this.worker) await this.worker.terminate();
    this.worker = undefined;
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { url: this.url, exportName: this.exportName } });
    worker.on('message', (reply: Reply) => {
      this.waiting.get(reply.id)?.(reply);
      this.waiting.delete(reply.id);
    });
    worker.on('error', (error) => this.stop(worker, error.message));
    worker.on('exit', () => this.stop(worker, 'worker exited'));
    worker.unref(); // an idle grader must not keep the process alive
    this.worker = worker;
    return worker;
  }

  private stop(worker: Worker, why: string): void {
    if (this.worker !== worker) return;
    this.worker = undefined;
    void worker.terminate();
    for (const [id, settle] of this.waiting) settle({ id, error: why });
    this.waiting.clear();
  }
}

function toResult(value: unknown): GradeResult {
  if (typeof value === 'number') return { score: value, reason: '' };
  if (value !== null && typeof value === 'object' && 'score' in value) {
    const { score, reason } = value as { score: unknown; reason?: unknown };
    return { score: Number(score), reason: reason === undefined ? '' : String(reason) };
  }
  throw new Error(`the grading function returned ${JSON.stringify(value)}, not a number or {score, reason}`);
}
