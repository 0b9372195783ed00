/**
 * Kernel benchmark: matmul (square and transformer-shaped), attention and RMSNorm on the current
 * adapter. Reproduce with
 *   npm run bench                                  (build, then node dist/bench/kernels.js)
 *   node dist/bench/kernels.js --variants          (every matmul variant on 1024³ as well)
 *   WEBGPU_TOGGLES=disable_robustness,skip_validation node dist/bench/kernels.js
 * On a CPU adapter set XDG_RUNTIME_DIR=/tmp. Numbers are the fastest of a few samples: other
 * processes sharing the CPU only ever make a run slower.
 */
import { Gpu } from '../src/gpu/gpu.js';
import type { DType, Tensor } from '../src/gpu/tensor.js';
import { attention } from '../src/ops/attention.js';
import { matmulInto } from '../src/ops/matmul.js';
import { chooseMatmulVariant, forceMatmulVariant, MATMUL_VARIANTS, variantSupported } from '../src/ops/matmul-variants.js';
import { rmsnorm } from '../src/ops/rmsnorm.js';
import { measure, row, timingMethod } from './timing.js';

const args = new Set(process.argv.slice(2));

function random(gpu: Gpu, shape: number[], dtype: DType = 'f32'): Tensor {
  const n = shape.reduce((x, y) => x * y, 1);
  return gpu.tensor(Float32Array.from({ length: n }, () => Math.random() * 2 - 1), shape, dtype);
}

interface MatmulCase {
  label: string;
  m: number;
  k: number;
  n: number;
  transA?: boolean;
  transB?: boolean;
  bDtype?: DType;
}

/** Milliseconds per C = op(A)·op(B) into a preallocated C, so only the kernel is timed. */
async function benchMatmul(gpu: Gpu, c: MatmulCase, samples: number): Promise<void> {
  const { m, k, n, transA = false, transB = false, bDtype = 'f32' } = c;
  const a = random(gpu, transA ? [k, m] : [m, k]);
  const b = random(gpu, transB ? [n, k] : [k, n], bDtype);
  const out = gpu.empty([m, n]);
  const t = await measure(gpu, () => matmulInto(out, a, b, { transA, transB, accumulate: false }), { samples });
  console.log(row(`${c.label} [${chooseMatmulVariant(gpu, m)}]`, t, 2 * m * n * k, 'GFLOP/s'));
  for (const x of [a, b, out]) x.dispose();
}

const gpu = await Gpu.create();
console.log(`adapter: ${gpu.adapterName}`);
console.log(`date: ${new Date().toISOString()}`);
console.log(`toggles: ${process.env.WEBGPU_TOGGLES ?? '(none)'}`);
console.log(`timing: ${timingMethod(gpu)}`);
console.log(`command: ${['node', ...process.argv.slice(1).map((p, i) => (i === 0 ? 'dist/bench/kernels.js' : p))].join(' ')}\n`);

console.log('matmul (f32 accumulate; [variant] in use)');
const square: MatmulCase[] = [256, 512, 1024].map((s) => ({ label: `${s}×${s}·${s}×${s}`, m: s, k: s, n: s }));
const transformer: MatmulCase[] = [
  { label: 'x·Wᵀ 512×576 · [1536×576]ᵀ (MLP up)', m: 512, k: 576, n: 1536, transB: true },
  { label: 'x·Wᵀ 512×576 · [1536×576]ᵀ f16 W', m: 512, k: 576, n: 1536, transB: true, bDtype: 'f16' },
  { label: 'x·Wᵀ 512×576 · [576×576]ᵀ (attention proj)', m: 512, k: 576, n: 576, transB: true },
  { label: 'dX = dY·W 512×1536 · 1536×576', m: 512, k: 1536, n: 576 },
  { label: 'dW = dYᵀ·X [512×1536]ᵀ · 512×576', m: 1536, k: 512, n: 576, transA: true },
  { label: 'decode x·Wᵀ 8×576 · [1536×576]ᵀ f16 W', m: 8, k: 576, n: 1536, transB: true, bDtype: 'f16' },
  { label: 'LM head 512×576 · [49152×576]ᵀ f16 W', m: 512, k: 576, n: 49152, transB: true, bDtype: 'f16' },
];
for (const c of [...square, ...transformer]) await benchMatmul(gpu, c, c.n > 10000 ? 2 : 3);

if (args.has('--variants')) {
  console.log('\nmatmul variants, 1024×1024·1024×1024 f32');
  for (const name of MATMUL_VARIANTS.filter((v) => variantSupported(gpu, v))) {
    forceMatmulVariant(gpu, name);
    await benchMatmul(gpu, { label: `1024³ ${name}`, m: 1024, k: 1024, n: 1024 }, 3);
  }
  forceMatmulVariant(gpu, undefined);
}

{
  console.log('\nattention (causal, GQA; FLOPs count the visible (query, key) pairs)');
  const [B, T, Hq, Hkv, D] = [4, 256, 9, 3, 64];
  const [q, k, v] = [random(gpu, [B, T, Hq, D]), random(gpu, [B, T, Hkv, D]), random(gpu, [B, T, Hkv, D])];
  const keyStart = gpu.zeros([B], 'u32');
  const t = await measure(gpu, () => gpu.tidy(() => void attention(q, k, v, { keyStart })));
  const pairs = (B * Hq * T * (T + 1)) / 2;
  console.log(row(`forward B=${B} T=${T} Hq=${Hq} Hkv=${Hkv} D=${D}`, t, 4 * D * pairs, 'GFLOP/s'));
}

{
  console.log('\nRMSNorm (bytes: read x and weight, write out and the saved 1/rms)');
  for (const [rows, cols] of [
    [512, 576],
    [4096, 576],
  ]) {
    const x = random(gpu, [rows, cols]);
    const weight = random(gpu, [cols]);
    const t = await measure(gpu, () => gpu.tidy(() => void rmsnorm(x, weight, 1e-5)), { reps: 10 });
    const bytes = 4 * (2 * rows * cols + cols + rows);
    console.log(row(`rmsnorm ${rows}×${cols}`, t, bytes, 'GB/s'));
  }
}

gpu.destroy();
