import { describe, it } from 'vitest';
import { backward } from '../src/autograd/backward.js';
import { Linear } from '../src/model/linear.js';
import { lmHeadLogprobs } from '../src/nn/lm-head-logprobs.js';
import { tokenLogprobs } from '../src/ops/token-logprobs.js';
import { expectClose } from './helpers/check.js';
import { useGpu } from './helpers/gpu.js';
import { randn, rng } from './helpers/random.js';

const gpu = useGpu();

describe('lmHeadLogprobs (chunked, fused with the LM head)', () => {
  for (const [rows, width, vocab, chunk, dtype] of [
    [1, 8, 5, 256, 'f32'],
    [37, 24, 301, 10, 'f32'],
    [37, 24, 301, 37, 'f16'],
    [130, 64, 1000, 64, 'f32'],
  ] as const) {
    it(`equals the unchunked log-probs, entropy and hidden-state gradient (N=${rows}, V=${vocab}, chunk ${chunk}, ${dtype} head)`, async (ctx) => {
      const g = gpu();
      if (dtype === 'f16' && !g.hasF16) ctx.skip();
      const pick = rng(rows);
      const head = new Linear('lm_head', g.tensor(randn(vocab * width, 2, 0.3), [vocab, width], dtype));
      const targetIds = Array.from({ length: rows }, () => Math.floor(pick() * vocab));
      const weights = randn(rows, 3);
      const run = async (chunked: boolean) => {
        const hidden = g.tensor(randn(rows * width, 1), [rows, width]);
        hidden.requiresGrad = true;
        const result = g.tidy(() => {
          const targets = g.tensor(targetIds, [rows], 'u32');
          const out = chunked
            ? lmHeadLogprobs(hidden, head, targets, chunk)
            : tokenLogprobs(head.forward(hidden), targets, { withEntropy: true });
          backward(out.logprobs, g.tensor(weights, [rows]));
          return { logprobs: out.logprobs, entropy: out.entropy };
        });
        return { logprobs: await result.logprobs.toArray(), entropy: await result.entropy.toArray(), grad: await hidden.grad!.toArray() };
      };
      const reference = await run(false);
      const chunked = await run(true);
      // Same kernels on the same rows: only the LM-head matmul may run a different variant.
      expectClose(chunked.logprobs, reference.logprobs, { atol: 1e-5, rtol: 1e-5 }, 'logprobs');
      expectClose(chunked.entropy, reference.entropy, { atol: 1e-5, rtol: 1e-5 }, 'entropy');
      expectClose(chunked.grad, reference.grad, { atol: 1e-5, rtol: 1e-4 }, 'd hidden');
    });
  }
});
