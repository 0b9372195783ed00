import { beforeAll, describe, expect, it } from 'vitest';
import { noGrad } from '../src/autograd/grad-node.js';
import { generate } from '../src/generate/generate.js';
import { resolveModel } from '../src/io/model-registry.js';
import { openWeights } from '../src/io/weight-source.js';
import { LlamaModel } from '../src/model/llama.js';
import { tokenLogprobs } from '../src/ops/token-logprobs.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { expectClose } from './helpers/check.js';
import { useGpu } from './helpers/gpu.js';
import { runPythonAsync, TRANSFORMERS_LOGITS } from './python/run-python.js';

const gpu = useGpu();

// The real model, set up by scripts/setup.sh (the test fails, rather than skips, without it).
describe('SmolLM2-135M-Instruct (GGUF Q4_1) against transformers loading the same file', () => {
  let model: LlamaModel;
  let tokenizer: Tokenizer;
  let ggufPath = '';
  beforeAll(() => {
    const resolved = resolveModel('small');
    if (resolved.weights.format !== 'gguf') throw new Error('small should be a GGUF model');
    ggufPath = resolved.weights.path;
    const reader = openWeights(resolved.weights);
    model = new LlamaModel(gpu(), resolved.config, reader);
    reader.close();
    tokenizer = Tokenizer.fromSource(resolved.tokenizer);
  });

  it('gives the same logits, log-probs and greedy continuation (f32)', async () => {
    const g = gpu();
    const text = tokenizer.renderChat([{ role: 'user', content: 'What is 12 + 7?' }], { addGenerationPrompt: true });
    const ids = tokenizer.encode(text, { addSpecialTokens: false });
    const ref = JSON.parse(await runPythonAsync(TRANSFORMERS_LOGITS, [ggufPath], JSON.stringify({ prompts: [ids], new_tokens: 8 }))) as {
      logits: number[][];
      logprobs: number[][];
      greedy: number[][];
    };
    const steps = ids.length;
    const { logits, logprobs } = noGrad(() =>
      g.tidy(() => {
        const out = model.logits(
          model.forward(g.tensor(ids, [1, steps], 'u32'), { positions: g.tensor(ids.map((_, i) => i), [1, steps], 'u32') }),
        );
        return { logits: out, logprobs: tokenLogprobs(out, g.tensor([...ids.slice(1), 0], [steps], 'u32')) };
      }),
    );
    // 30 layers in f32 with different summation orders: logits agree to ~1e-3 of their ~±20 range.
    expectClose(await logits.toArray(), ref.logits[0], { atol: 2e-3, rtol: 1e-3 }, 'logits');
    expectClose(Array.from(await logprobs.toArray()).slice(0, steps - 1), ref.logprobs[0], { atol: 2e-3, rtol: 1e-3 }, 'log-probs');
    const [completion] = await generate(model, [ids], { maxNewTokens: 8, temperature: 0, eosTokenIds: [] });
    expect(completion.tokens).toEqual(ref.greedy[0]);
  });
});
