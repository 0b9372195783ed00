// Whether the process's resident set (RssShmem: on lavapipe device memory is shared memory) falls
// when buffers are destroyed, for buffers below and above Dawn's sub-allocation size:
//   npm run build && node --expose-gc dist/bench/buffer-release.js
// (WEBGPU_TOGGLES=disable_resource_suballocation to compare without Dawn's sub-allocator.)
import { readFileSync } from 'node:fs';
import { Gpu } from '../src/gpu/gpu.js';
import { benchArgs } from './args.js';

const MiB = 2 ** 20;
const resident = () =>
  readFileSync('/proc/self/status', 'utf8')
    .split('\n')
    .filter((line) => /^(VmRSS|RssShmem)/.test(line))
    .map((line) => line.replace(/\s+/g, ' '))
    .join(', ');

benchArgs(import.meta.url, {});
const gpu = await Gpu.create();
console.log(`start: ${resident()}`);
for (const [label, elements] of [['1 MiB', MiB / 4], ['16 MiB', (16 * MiB) / 4]] as const) {
  const tensors = Array.from({ length: 32 }, () => gpu.zeros([elements]));
  await gpu.sync();
  console.log(`32 buffers of ${label} written (pool ${(gpu.pool.allocatedBytes / MiB).toFixed(0)} MiB): ${resident()}`);
  for (const t of tensors) t.dispose();
  gpu.pool.trim();
  await gpu.sync();
  console.log(`  destroyed: ${resident()}`);
  // Dawn frees a destroyed buffer's memory once work submitted after the destroy has finished.
  for (let i = 0; i < 3; i++) {
    gpu.zeros([1]).dispose();
    await gpu.sync();
  }
  console.log(`  after three more submits: ${resident()}`);
}
gpu.destroy();
