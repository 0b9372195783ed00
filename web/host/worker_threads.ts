// node:worker_threads for the browser build: a Web Worker behind the part of Node's Worker API
// that src/ uses (eval'd source, workerData, message/error/exit events, terminate). The eval'd
// source gets Node's `require('node:worker_threads')` for its parentPort and workerData, so the
// same grader worker runs in both hosts and a stuck grader can still be terminated.

type Listener = (value: never) => void;

export interface WorkerOptions {
  eval: true;
  workerData?: unknown;
}

function workerScript(source: string, workerData: unknown): string {
  return `
const hostWorkerData = ${JSON.stringify(workerData ?? null)};
const hostMessageListeners = [];
const hostParentPort = {
  on(type, listener) { if (type === 'message') hostMessageListeners.push(listener); },
  postMessage(value) { self.postMessage(value); },
};
self.onmessage = (event) => { for (const listener of hostMessageListeners) listener(event.data); };
function require(name) {
  if (name === 'node:worker_threads') return { parentPort: hostParentPort, workerData: hostWorkerData };
  throw new Error(name + ' is not available in a browser worker');
}
(() => {${source}
})();
`;
}

export class Worker {
  private readonly worker: globalThis.Worker;
  private readonly listeners = new Map<string, Listener[]>();
  private exited = false;

  constructor(source: string, options: WorkerOptions) {
    const url = URL.createObjectURL(new Blob([workerScript(source, options.workerData)], { type: 'text/javascript' }));
    this.worker = new globalThis.Worker(url);
    this.worker.onmessage = (event) => this.emit('message', event.data);
    this.worker.onerror = (event) => {
      event.preventDefault();
      this.emit('error', new Error(event.message || 'the worker failed to start'));
    };
  }

  on(type: 'message' | 'error' | 'exit', listener: Listener): this {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
    return this;
  }

  private emit(type: string, value: unknown): void {
    for (const listener of this.listeners.get(type) ?? []) (listener as (v: unknown) => void)(value);
  }

  postMessage(value: unknown): void {
    this.worker.postMessage(value);
  }

  terminate(): Promise<number> {
    this.worker.terminate();
    if (!this.exited) {
      this.exited = true;
      queueMicrotask(() => this.emit('exit', 1));
    }
    return Promise.resolve(1);
  }

  /** A page has no process to keep alive. */
  unref(): void {}
}
