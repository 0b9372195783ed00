import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Gpu } from './gpu.js';

/**
 * Milliseconds per repetition of the dispatches `record` adds. One untimed run first compiles
 * the pipelines and touches the memory; then `reps` runs go into one pass timed with GPU
 * timestamps when the adapter has them (Dawn quantises timestamps unless its
 * timestamp_quantization toggle is off, so many reps per pass keep that error small), else
 * wall clock around a sync. `record` must only dispatch (no uploads or clears, which would end
 * the timed pass). `warmup` false skips the untimed run when the caller has already done it.
 */
export async function timeDispatches(gpu: Gpu, record: () => void, reps = 1, warmup = true): Promise<number> {
  if (warmup) {
    record();
    await gpu.sync();
  }
  if (!gpu.hasTimestamps) {
    const start = performance.now();
    for (let r = 0; r < reps; r++) record();
    await gpu.sync();
    return (performance.now() - start) / reps;
  }
  const device = gpu.device;
  const querySet = device.createQuerySet({ type: 'timestamp', count: 2 });
  const resolved = device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  const readback = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  try {
    gpu.commands.timed(querySet, 0, () => {
      for (let r = 0; r < reps; r++) record();
    });
    gpu.commands.resolveQueries(querySet, 2, resolved);
    gpu.commands.copy(resolved, 0, readback, 0, 16);
    await gpu.sync();
    await gpu.waitFor(readback.mapAsync(GPUMapMode.READ));
    const [begin, end] = new BigInt64Array(readback.getMappedRange());
    return Number(end - begin) / 1e6 / reps;
  } finally {
    readback.destroy();
    resolved.destroy();
    querySet.destroy();
  }
}

function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
  return dir;
}

type Winners = Record<string, Record<string, string>>;

/**
 * Remembers which variant of a kernel won on which adapter, per shape class: in memory, and in
 * `.cache/autotune/<kernel>.json` under the project root (gitignored) unless `persist` is false,
 * so a process tunes once per machine rather than once per run.
 */
export class AutotuneCache {
  private winners: Winners | null = null;

  constructor(
    readonly kernel: string,
    readonly persist = true,
    readonly file = join(projectRoot(), '.cache', 'autotune', `${kernel}.json`),
  ) {}

  private load(): Winners {
    if (this.winners) return this.winners;
    this.winners = {};
    if (this.persist && existsSync(this.file)) {
      try {
        this.winners = JSON.parse(readFileSync(this.file, 'utf8')) as Winners;
      } catch {
        // A corrupt cache is only a lost tuning result; it is rewritten on the next set().
      }
    }
    return this.winners;
  }

  get(adapter: string, shapeClass: string): string | undefined {
    return this.load()[adapter]?.[shapeClass];
  }

  /** Records a winner; `persist` false keeps it in memory only (experiments, tests). */
  set(adapter: string, shapeClass: string, winner: string, persist = this.persist): void {
    const winners = this.load();
    (winners[adapter] ??= {})[shapeClass] = winner;
    if (!persist) return;
    mkdirSync(dirname(this.file), { recursive: true });
    writeFileSync(this.file, JSON.stringify(winners, null, 2) + '\n');
  }

  /** Forgets what was learned in memory; the next get() rereads the file. */
  reset(): void {
    this.winners = null;
  }
}
