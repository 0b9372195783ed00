// The `process` global for the browser build (esbuild injects it where src/ names `process`).
// A page has no environment, signals or resident-set figure: memory it cannot measure is NaN,
// which metrics.jsonl writes as null rather than a made-up number.

type ExitListener = () => void;
const exitListeners = new Set<ExitListener>();
const PAGE_PID = 1;

interface ChromeMemory {
  usedJSHeapSize: number;
}

function heapUsed(): number {
  const memory = (performance as Performance & { memory?: ChromeMemory }).memory;
  return memory ? memory.usedJSHeapSize : NaN;
}

export const process = {
  env: {} as Record<string, string | undefined>,
  pid: PAGE_PID,
  cwd: (): string => '/',
  memoryUsage: () => ({ rss: NaN, heapUsed: heapUsed(), arrayBuffers: NaN }),
  resourceUsage: () => ({ maxRSS: NaN }),
  on(event: string, listener: ExitListener): void {
    if (event === 'exit') exitListeners.add(listener);
  },
  off(event: string, listener: ExitListener): void {
    if (event === 'exit') exitListeners.delete(listener);
  },
  /** Only the page's own "process" exists; signal 0 asks whether it is alive. */
  kill(pid: number, signal?: number): boolean {
    if (pid === PAGE_PID && signal === 0) return true;
    throw Object.assign(new Error(`kill ${pid}: no such process`), { code: 'ESRCH' });
  },
};
