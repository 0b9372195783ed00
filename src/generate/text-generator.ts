import { noGrad } from '../autograd/grad-node.js';
import type { LoadedModel } from '../model/load.js';
import type { GenerationOptions, TextGenerator } from '../rewards/graders/llm-judge.js';
import { generate } from './generate.js';

/**
 * Text in, text out over a loaded model — what an LLM-as-judge grader needs. Prompts go through
 * the chat template as one user turn; all of a batch's prompts decode together.
 */
export class ModelTextGenerator implements TextGenerator {
  constructor(private readonly loaded: LoadedModel) {}

  async generate(prompts: readonly string[], options: GenerationOptions): Promise<string[]> {
    if (!prompts.length) return [];
    const { model, tokenizer } = this.loaded;
    const ids = prompts.map((p) =>
      tokenizer.chatTemplate ? tokenizer.encodeChat([{ role: 'user', content: p }], { addGenerationPrompt: true }) : tokenizer.encode(p),
    );
    const eos = tokenizer.eosTokenId;
    const completions = await noGrad(() =>
      generate(model, ids, { maxNewTokens: options.maxNewTokens, temperature: options.temperature, eosTokenIds: eos === undefined ? undefined : [eos] }),
    );
    return completions.map((c) => tokenizer.decode(c.tokens, { skipSpecialTokens: true }));
  }
}
