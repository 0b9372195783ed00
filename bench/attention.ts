/**
 * Wall-clock timing of the attention kernels on the current adapter:
 *   npm run build && XDG_RUNTIME_DIR=/tmp node dist/bench/attention.js
 * Each rep records the dispatches inside a tidy and waits with gpu.sync(); the first rep (shader
 * compilation) is dropped, and the minimum of the rest is reported because other processes may
 * share the CPU on a lavapipe machine. The backward needs the forward's saved log-sum-exp, which
 * lives only in the tidy that ran the forward, so it is timed as forward + backward.
 */
import { backward } from '../src/autograd/backward.js';
import { Gpu } from '../src/gpu/gpu.js';
import type { Tensor } from '../src/gpu/tensor.js';
import { attention } from '../src/ops/attention.js';
import { benchArgs } from './args.js';

const REPS = 5;

async function time(gpu: Gpu, label: string, flops: number, record: () => void): Promise<number> {
  const times: number[] = [];
  for (let rep = 0; rep <= REPS; rep++) {
    await gpu.sync();
    const start = performance.now();
    gpu.tidy(record);
    await gpu.sync();
    if (rep > 0) times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  const ms = times[0];
  console.log(`${label}: min ${ms.toFixed(2)} ms, median ${times[REPS >> 1].toFixed(2)} ms over ${REPS} reps (${(flops / ms / 1e6).toFixed(2)} GFLOP/s)`);
  return ms;
}

function random(gpu: Gpu, shape: number[]): Tensor {
  const n = shape.reduce((a, b) => a * b);
  return gpu.tensor(Float32Array.from({ length: n }, () => Math.random() * 2 - 1), shape);
}

benchArgs(import.meta.url, {});
const gpu = await Gpu.create();
console.log(`adapter: ${gpu.adapterName}`);

{
  const [B, T, Hq, Hkv, D] = [4, 256, 9, 3, 64];
  const q = random(gpu, [B, T, Hq, D]);
  const k = random(gpu, [B, T, Hkv, D]);
  const v = random(gpu, [B, T, Hkv, D]);
  const gradOut = random(gpu, [B, T, Hq, D]);
  // Causal: T(T+1)/2 visible (query, key) pairs per head. The forward does 2 products of length D
  // per pair; the backward 7 (the scores are recomputed in both of its passes).
  const pairs = (B * Hq * T * (T + 1)) / 2;
  const label = `B=${B} T=S=${T} Hq=${Hq} Hkv=${Hkv} D=${D}`;
  const forward = await time(gpu, `forward            ${label}`, 4 * D * pairs, () => void attention(q, k, v));
  for (const t of [q, k, v]) t.requiresGrad = true;
  const both = await time(gpu, `forward + backward ${label}`, 18 * D * pairs, () => {
    for (const t of [q, k, v]) t.grad = null;
    backward(attention(q, k, v), gradOut);
    for (const t of [q, k, v]) t.grad?.dispose();
  });
  console.log(`backward (difference): ${(both - forward).toFixed(2)} ms`);
}

{
  const [B, S, Hq, Hkv, D] = [8, 512, 9, 3, 64];
  const q = random(gpu, [B, 1, Hq, D]);
  const k = random(gpu, [B, S, Hkv, D]);
  const v = random(gpu, [B, S, Hkv, D]);
  await time(gpu, `decode B=${B} T=1 S=${S} Hq=${Hq} Hkv=${Hkv} D=${D}`, 4 * D * B * Hq * S, () => void attention(q, k, v));
}

{
  // A GRPO rollout's decode: 8 prompts × 4 samples, 140 keys of which the first 88 are the prompt's
  // (copies in every sample's cache row), one layer's call repeated 30 times as a step's layers
  // make it. The per-row kernel reads every sequence's keys; attention_decode reads a run's prompt
  // keys once (runs of 4), or each sequence alone (runs of 1), or a mix as rows finish. Alternated,
  // 3 rounds.
  const [B, S, kvLength, shared, Hq, Hkv, D, layers] = [32, 216, 140, 88, 9, 3, 64, 30];
  const q = random(gpu, [B, 1, Hq, D]);
  const k = random(gpu, [B, S, Hkv, D]);
  const v = random(gpu, [B, S, Hkv, D]);
  const kvRows = gpu.tensor(Array.from({ length: B }, (_, b) => b), [B], 'u32');
  // Runs of the given sizes over the batch in order (those of several first, as the cache gives them).
  const runsOf = (sizes: number[]) => {
    const starts = sizes.map((_, i) => sizes.slice(0, i).reduce((a, b) => a + b, 0));
    const runs = gpu.tensor(sizes.flatMap((n, i) => [starts[i], n]), [sizes.length, 2], 'u32');
    return { kvLength, kvRows, sharedKeys: { runs, severalRuns: sizes.filter((n) => n > 1).length, length: shared } };
  };
  const [ones, fours] = [runsOf(Array<number>(B).fill(1)), runsOf(Array<number>(B / 4).fill(4))];
  // As rows finish: 4 runs of 4, 4 of 2, 8 of 1.
  const mixed = runsOf([4, 4, 4, 4, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1]);
  const modes: [string, () => void][] = [
    ['per-row kernel (kvRows)       ', () => void attention(q, k, v, { kvLength, kvRows })],
    ['attention_decode, runs of 1   ', () => void attention(q, k, v, ones)],
    ['attention_decode, runs of 4   ', () => void attention(q, k, v, fours)],
    ['attention_decode, 4, 2 and 1  ', () => void attention(q, k, v, mixed)],
  ];
  for (let round = 1; round <= 3; round++) {
    for (const [label, record] of modes) {
      await time(gpu, `round ${round} ${label} B=${B} keys ${kvLength} (${shared} shared) ×${layers}`, 4 * D * B * Hq * kvLength * layers, () => {
        for (let layer = 0; layer < layers; layer++) record();
      });
    }
  }
}

gpu.destroy();
