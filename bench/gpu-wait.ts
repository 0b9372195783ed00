/**
 * What waiting for the GPU costs the CPU: Dawn's Node bindings poll for completion from a busy
 * `setImmediate` chain, so awaiting a map or work-done promise spins the main thread; on a CPU
 * adapter that core is one the shaders run on. Runs the same chain of 1024³ products, waiting
 * plainly and through quietWait (src/gpu/quiet-wait.ts) in alternating samples, and prints wall
 * time and CPU time of the main thread and of the driver's worker threads.
 *   npm run build && XDG_RUNTIME_DIR=/tmp node dist/bench/gpu-wait.js [--samples 5] [--products 8]
 */
import { Gpu } from '../src/gpu/gpu.js';
import { quietWait } from '../src/gpu/quiet-wait.js';
import { matmulInto } from '../src/ops/matmul.js';
import { mainThreadCpuMs, workerCpuMs } from './timing.js';
import { benchArgs } from './args.js';

const args = benchArgs(import.meta.url, { samples: { type: 'string', default: '5' }, products: { type: 'string', default: '8' } });
const [samples, products, n] = [Number(args.samples), Number(args.products), 1024];

const gpu = await Gpu.create();
const a = gpu.tensor(Float32Array.from({ length: n * n }, () => Math.random() * 2 - 1), [n, n]);
const c = gpu.empty([n, n]);
const work = () => {
  for (let i = 0; i < products; i++) matmulInto(c, a, a, { accumulate: false });
  gpu.flush();
};
work();
await gpu.sync();

type Mode = 'plain await' | 'quietWait';
const results: Record<Mode, { wall: number; main: number; workers: number }[]> = { 'plain await': [], quietWait: [] };
for (let s = 0; s < samples; s++) {
  for (const mode of Object.keys(results) as Mode[]) {
    const [m0, w0, t0] = [mainThreadCpuMs() ?? 0, workerCpuMs() ?? 0, performance.now()];
    work();
    const done = gpu.device.queue.onSubmittedWorkDone();
    await (mode === 'quietWait' ? quietWait(done) : done);
    results[mode].push({ wall: performance.now() - t0, main: (mainThreadCpuMs() ?? 0) - m0, workers: (workerCpuMs() ?? 0) - w0 });
  }
}
const flop = products * 2 * n ** 3;
console.log(`${gpu.adapterName}: ${products} products ${n}³ per sample, ${samples} samples per mode (alternating)`);
console.log('| wait | best wall ms | GFLOP/s at best | median main-thread CPU ms | median worker CPU ms |');
console.log('|---|---:|---:|---:|---:|');
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1];
for (const [mode, rs] of Object.entries(results)) {
  const best = Math.min(...rs.map((r) => r.wall));
  console.log(`| ${mode} | ${best.toFixed(0)} | ${(flop / best / 1e6).toFixed(1)} | ${median(rs.map((r) => r.main))} | ${median(rs.map((r) => r.workers))} |`);
}
console.log(`reproduce: npm run build && XDG_RUNTIME_DIR=/tmp node dist/bench/gpu-wait.js ${process.argv.slice(2).join(' ')}`);
gpu.destroy();
