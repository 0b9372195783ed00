/**
 * Kernel benchmark: memory streaming, matmul (square, transformer-shaped and decode-shaped),
 * attention and RMSNorm on the current adapter. Reproduce with
 *   npm run bench                                  (build, then node dist/bench/kernels.js)
 *   node dist/bench/kernels.js --variants          (every matmul variant on 1024³ and decode shapes)
 *   node dist/bench/kernels.js --decode-batch      (only decode shapes, M = 1 … 32, every CPU variant)
 *   node dist/bench/kernels.js --training          (only a training step's product shapes, every CPU variant)
 *   node dist/bench/kernels.js --training --match LoRA   (only the cases whose label contains LoRA)
 *   node dist/bench/kernels.js --training --base-dtype f16   (the frozen projections' W in f16)
 *   WEBGPU_TOGGLES=disable_robustness,skip_validation node dist/bench/kernels.js
 * On a CPU adapter set XDG_RUNTIME_DIR=/tmp. Numbers are the fastest of a few samples: other
 * processes sharing the CPU only ever make a run slower.
 */
import { Gpu } from '../src/gpu/gpu.js';
import type { Kernel } from '../src/gpu/kernel.js';
import type { DType, Tensor } from '../src/gpu/tensor.js';
import { attention } from '../src/ops/attention.js';
import { matmulInto } from '../src/ops/matmul.js';
import { contiguousLayout, kRange, swappedLayout } from '../src/ops/matmul-layout.js';
import { chooseMatmulVariant, forceMatmulVariant, MATMUL_VARIANTS, recordMatmul, variantSupported } from '../src/ops/matmul-variants.js';
import { rmsnorm } from '../src/ops/rmsnorm.js';
import { measure, row, timingMethod } from './timing.js';
import { benchArgs } from './args.js';

const args = benchArgs(import.meta.url, { 'decode-batch': { type: 'boolean' }, training: { type: 'boolean' }, variants: { type: 'boolean' }, match: { type: 'string' }, 'base-dtype': { type: 'string', default: 'f32' } });

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
  /** Report the rate at which B (the weights) is read rather than FLOP/s: decode is bound by it. */
  bandwidth?: boolean;
  /** Compute it the other way round, (op(B)ᵀ·op(A)ᵀ)ᵀ written transposed (swappedLayout). */
  swapped?: boolean;
  /** Sum over K in blocks of this many, one accumulating dispatch each (kRange). */
  kBlock?: number;
}

/** Milliseconds per C = op(A)·op(B) into a preallocated C, so only the kernel is timed. */
async function benchMatmul(gpu: Gpu, c: MatmulCase, samples: number): Promise<void> {
  const { m, k, n, transA = false, transB = false, bDtype = 'f32' } = c;
  const a = random(gpu, transA ? [k, m] : [m, k]);
  const b = random(gpu, transB ? [n, k] : [k, n], bDtype);
  const out = gpu.empty([m, n]);
  // Decode-sized products take ~1 ms: many per timed pass keep the timestamp and worker-CPU-time
  // resolution (10 ms ticks) small against them.
  const reps = m * n * k < 1e8 ? 100 : 1;
  const plain = contiguousLayout(m, k, n, transA, transB);
  const layout = c.swapped ? swappedLayout(plain) : plain;
  const [left, right] = c.swapped ? [b, a] : [a, b];
  const variant = chooseMatmulVariant(gpu, layout.m);
  const block = c.kBlock ?? k;
  // As the model runs it (matmulInto), or exactly as asked.
  const record =
    c.swapped || c.kBlock
      ? () => {
          for (let k0 = 0; k0 < k; k0 += block) recordMatmul(variant, out, left, right, kRange(layout, k0, Math.min(k, k0 + block)), k0 > 0, 1);
        }
      : () => matmulInto(out, a, b, { transA, transB, accumulate: false });
  const t = await measure(gpu, record, { samples, reps });
  const label = `${c.label}${c.swapped ? ' swapped' : ''}${c.kBlock ? ` K in ${c.kBlock}s` : ''} [${variant}]`;
  console.log(c.bandwidth ? row(label, t, b.byteLength, 'GB/s') : row(label, t, 2 * m * n * k, 'GFLOP/s'));
  // A batch of decode rows is bound by arithmetic as much as by the weights: show both rates.
  if (c.bandwidth && m > 1) console.log(row('', t, 2 * m * n * k, 'GFLOP/s'));
  for (const x of [a, b, out]) x.dispose();
}

/**
 * The streaming ceiling of storage-buffer reads on this adapter: a workgroup of 64 lanes sums a
 * 128 MiB f32 buffer (the default binding limit), each lane reading its own contiguous run with
 * vec4 loads, the access pattern of the skinny matmul's weights.
 */
async function benchStreaming(gpu: Gpu): Promise<void> {
  const size = 128 * 2 ** 20;
  const run = 576; // f32 per lane, a SmolLM2 weight row
  const workgroups = Math.floor(size / 4 / run / 64);
  const lanes = workgroups * 64;
  const code = `
    @group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
    @group(0) @binding(2) var<storage, read_write> dst: array<f32>;
    @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3<u32>) {
      let base = id.x * ${run / 4}u;
      var acc = vec4<f32>();
      for (var i = 0u; i < ${run / 4}u; i++) { acc += src[base + i]; }
      dst[id.x] = dot(acc, vec4(1.0));
    }`;
  const module = gpu.device.createShaderModule({ label: 'bench_stream', code });
  const pipeline = gpu.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const kernel: Kernel = { label: 'bench_stream', pipeline, layout: pipeline.getBindGroupLayout(0), hasParams: false };
  const src = gpu.zeros([size / 4]);
  const dst = gpu.empty([lanes]);
  const t = await measure(gpu, () => gpu.run(kernel, [src, dst], [workgroups]), { reps: 4 });
  console.log(row('sum of 128 MiB f32, vec4 loads, one run per lane', t, lanes * run * 4, 'GB/s'));
  src.dispose();
  dst.dispose();
}

const gpu = await Gpu.create();
console.log(`adapter: ${gpu.adapterName}`);
console.log(`date: ${new Date().toISOString()}`);
console.log(`toggles: ${process.env.WEBGPU_TOGGLES ?? '(none)'}`);
console.log(`timing: ${timingMethod(gpu)}`);
console.log(`command: ${['node', ...process.argv.slice(1).map((p, i) => (i === 0 ? 'dist/bench/kernels.js' : p))].join(' ')}\n`);

if (args['decode-batch']) {
  // Batched decoding (M = 2–32 after finished rows leave): which variant streams the weights best.
  const variants = MATMUL_VARIANTS.filter((v) => variantSupported(gpu, v) && !v.startsWith('tiled'));
  console.log(`matmul, decode x·Wᵀ M×576 · [1536×576]ᵀ, variants ${variants.join(', ')} (rate: weight bytes read, then FLOP/s)`);
  for (const m of [1, 2, 4, 8, 16, 32]) {
    for (const bDtype of ['f32', 'f16'] as const) {
      for (const name of variants) {
        forceMatmulVariant(gpu, name);
        await benchMatmul(gpu, { label: `${m}×576 ${bDtype} W ${name}`, m, k: 576, n: 1536, transB: true, bDtype, bandwidth: true }, 3);
      }
    }
  }
  forceMatmulVariant(gpu, undefined);
  gpu.destroy();
  process.exit(0);
}

if (args.training) {
  // A GRPO micro-batch of SmolLM2-135M (a group of 4 completions of ~87 tokens after its prompt):
  // each projection's forward, dX and dW, LoRA's rank-side products and the LM head's two.
  // rows4x4 trails the other two on every large product (see Baselines).
  const variants = MATMUL_VARIANTS.filter((v) => variantSupported(gpu, v) && !v.startsWith('tiled') && v !== 'skinny' && v !== 'rows4x4');
  const m = 352;
  const bDtype: DType = args['base-dtype'] === 'f16' ? 'f16' : 'f32';
  const cases: MatmulCase[] = [
    ...[
      ['q, o', 576, 576],
      ['k, v', 576, 192],
      ['gate, up', 576, 1536],
      ['down', 1536, 576],
    ].flatMap(([name, inF, outF]): MatmulCase[] => [
      { label: `${name} x·Wᵀ ${m}×${inF}·[${outF}×${inF}]ᵀ ${bDtype} W`, m, k: Number(inF), n: Number(outF), transB: true, bDtype },
      { label: `${name} dX g·W ${m}×${outF}·${outF}×${inF} ${bDtype} W`, m, k: Number(outF), n: Number(inF), bDtype },
      { label: `${name} dW gᵀ·x [${m}×${outF}]ᵀ·${m}×${inF}`, m: Number(outF), k: m, n: Number(inF), transA: true },
    ]),
    { label: `LoRA x·Aᵀ ${m}×576·[8×576]ᵀ`, m, k: 576, n: 8, transB: true },
    { label: `LoRA h·Bᵀ ${m}×8·[1536×8]ᵀ`, m, k: 8, n: 1536, transB: true },
    { label: `LoRA dh·A ${m}×8·8×576`, m, k: 8, n: 576 },
    { label: `LoRA dh g·B ${m}×1536·1536×8`, m, k: 1536, n: 8 },
    { label: `LoRA dB gᵀ·h [${m}×1536]ᵀ·${m}×8`, m: 1536, k: m, n: 8, transA: true },
    { label: `LoRA dA dhᵀ·x [${m}×8]ᵀ·${m}×576`, m: 8, k: m, n: 576, transA: true },
    { label: `LM head logits 256×576·[49152×576]ᵀ`, m: 256, k: 576, n: 49152, transB: true },
    { label: `LM head dX 256×49152·49152×576`, m: 256, k: 49152, n: 576 },
    // The same product with dlogits' rows 32 bytes longer: rows 192 KiB apart all fall in one set of a 4 KiB-aliased L1.
    { label: `LM head dX, K 49160 256×49160·49160×576`, m: 256, k: 49160, n: 576 },
  ];
  for (const c of cases.filter((c) => !args.match || c.label.includes(args.match))) {
    // Products whose right operand is read along its rows (dX = g·W) also the other way round,
    // and the LM head's long sum over the vocabulary also in blocks.
    for (const swapped of c.transB || c.transA || c.bDtype === 'f16' ? [false] : [false, true]) {
      for (const kBlock of c.k > 10000 ? [undefined, 4096] : [undefined]) {
        for (const name of variants) {
          forceMatmulVariant(gpu, name);
          await benchMatmul(gpu, { ...c, swapped, kBlock }, c.k > 10000 || c.n > 10000 ? 2 : 3);
        }
      }
    }
  }
  forceMatmulVariant(gpu, undefined);
  gpu.destroy();
  process.exit(0);
}

console.log('memory (storage-buffer streaming ceiling)');
await benchStreaming(gpu);

console.log('\nmatmul (f32 accumulate; [variant] in use)');
const square: MatmulCase[] = [256, 512, 1024].map((s) => ({ label: `${s}×${s}·${s}×${s}`, m: s, k: s, n: s }));
const transformer: MatmulCase[] = [
  { label: 'x·Wᵀ 512×576 · [1536×576]ᵀ (MLP up)', m: 512, k: 576, n: 1536, transB: true },
  { label: 'x·Wᵀ 512×576 · [1536×576]ᵀ f16 W', m: 512, k: 576, n: 1536, transB: true, bDtype: 'f16' },
  { label: 'x·Wᵀ 512×576 · [576×576]ᵀ (attention proj)', m: 512, k: 576, n: 576, transB: true },
  { label: 'dX = dY·W 512×1536 · 1536×576', m: 512, k: 1536, n: 576 },
  { label: 'dW = dYᵀ·X [512×1536]ᵀ · 512×576', m: 1536, k: 512, n: 576, transA: true },
  { label: 'LM head 512×576 · [49152×576]ᵀ f16 W', m: 512, k: 576, n: 49152, transB: true, bDtype: 'f16' },
];
for (const c of [...square, ...transformer]) await benchMatmul(gpu, c, c.n > 10000 ? 2 : 3);

console.log('\nmatmul, decode shapes (rate: weight bytes read)');
const decode: MatmulCase[] = [1, 2, 8, 32].flatMap((m) =>
  (['f32', 'f16'] as const).map((bDtype) => ({ label: `x·Wᵀ ${m}×576 · [1536×576]ᵀ ${bDtype} W`, m, k: 576, n: 1536, transB: true, bDtype, bandwidth: true })),
);
decode.push({ label: 'LM head 1×576 · [49152×576]ᵀ f16 W', m: 1, k: 576, n: 49152, transB: true, bDtype: 'f16', bandwidth: true });
for (const c of decode) await benchMatmul(gpu, c, 3);

if (args.variants) {
  const supported = MATMUL_VARIANTS.filter((v) => variantSupported(gpu, v));
  console.log('\nmatmul variants, 1024×1024·1024×1024 f32');
  for (const name of supported) {
    forceMatmulVariant(gpu, name);
    await benchMatmul(gpu, { label: `1024³ ${name}`, m: 1024, k: 1024, n: 1024 }, 3);
  }
  console.log('\nmatmul variants, decode x·Wᵀ M×576 · [1536×576]ᵀ (rate: weight bytes read)');
  for (const c of decode.filter((d) => d.n === 1536 && d.m <= 8)) {
    for (const name of supported) {
      forceMatmulVariant(gpu, name);
      await benchMatmul(gpu, { ...c, label: `${c.label} ${name}` }, 3);
    }
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
