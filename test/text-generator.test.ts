import { describe, expect, it } from 'vitest';
import { generate } from '../src/generate/generate.js';
import { ModelTextGenerator } from '../src/generate/text-generator.js';
import { loadModel } from '../src/model/load.js';
import { buildReward } from '../src/rewards/config.js';
import { useGpu } from './helpers/gpu.js';
import { writeRandomCheckpoint } from './helpers/tiny-checkpoint.js';

const gpu = useGpu();

describe('ModelTextGenerator (a local model behind LLM-as-judge graders)', () => {
  it('decodes each prompt through the chat template, greedily and in order, and drives an llm_judge grader', async () => {
    const loaded = loadModel(gpu(), writeRandomCheckpoint(4));
    const generator = new ModelTextGenerator(loaded);
    const prompts = ['Rate this answer.', 'Is 2 + 2 = 4?'];
    const texts = await generator.generate(prompts, { maxNewTokens: 6, temperature: 0 });
    const { tokenizer } = loaded;
    const direct = await generate(loaded.model, prompts.map((p) => tokenizer.encodeChat([{ role: 'user', content: p }], { addGenerationPrompt: true })), {
      maxNewTokens: 6,
      temperature: 0,
      eosTokenIds: [tokenizer.eosTokenId!],
    });
    expect(texts).toEqual(direct.map((c) => tokenizer.decode(c.tokens, { skipSpecialTokens: true })));
    // A random model will not write a parsable score: the grader must say so and give 0, not fail.
    const reward = buildReward(
      { components: [{ name: 'judge', grader: { type: 'llm_judge', rubric: 'correct and concise', generation: { maxNewTokens: 6, temperature: 0 } } }] },
      { baseDir: '.', textGenerator: generator },
    );
    const [score] = await reward.score([{ prompt: 'What is 2 + 2?', completion: '4', example: {} }]);
    expect(score.total).toBe(0);
    expect(score.components.judge.reason).toMatch(/score/i);
  });
});
