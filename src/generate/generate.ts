import { noGrad } from '../autograd/grad-node.js';
import type { Gpu } from '../gpu/gpu.js';
import type { Tensor } from '../gpu/tensor.js';
import { KVCache } from '../model/kv-cache.js';
import type { LlamaModel } from '../model/llama.js';
import { embedding } from '../ops/embedding.js';
import { view } from '../ops/layout.js';
import { DEFAULT_SAMPLING, sampleTokens, type SamplingOptions } from './sampler.js';

export type FinishReason = 'eos' | 'stop' | 'length';

export interface GenerateOptions extends Partial<SamplingOptions> {
  maxNewTokens: number;
  /** Token ids that end a sequence (kept in the output); defaults to the model's eos ids. */
  eosTokenIds?: readonly number[];
  /** Strings that end a sequence (needs `decode`); the tokens kept run up to the one that completes it. */
  stop?: readonly string[];
  decode?: (ids: readonly number[]) => string;
  /** Called after each decode step with the number of tokens generated so far per sequence. */
  onStep?: (step: number, generated: number) => void;
}

export interface Completion {
  tokens: number[];
  finishReason: FinishReason;
}

/**
 * Pads prompts on the left so every row's last prompt token sits in the same column. Plain loops:
 * spreading a long prompt into call arguments overflows the stack.
 */
export function leftPad(prompts: readonly (readonly number[])[], padId = 0) {
  const width = prompts.reduce((n, p) => Math.max(n, p.length), 0);
  const ids = new Array<number>(prompts.length * width);
  const positions = new Array<number>(prompts.length * width);
  const keyStart: number[] = [];
  prompts.forEach((prompt, row) => {
    if (prompt.length === 0) throw new Error('generate: empty prompt (a prompt needs at least one token)');
    const pad = width - prompt.length;
    const start = row * width;
    for (let i = 0; i < width; i++) {
      ids[start + i] = i < pad ? padId : prompt[i - pad];
      positions[start + i] = i < pad ? 0 : i - pad;
    }
    keyStart.push(pad);
  });
  return { width, ids, positions, keyStart };
}

function eosIds(eos: number | number[] | null): number[] {
  return eos === null ? [] : Array.isArray(eos) ? eos : [eos];
}

function stopIndex(text: string, stops: readonly string[]): number {
  let cut = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (cut < 0 || i < cut)) cut = i;
  }
  return cut;
}

/**
 * Batched autoregressive sampling with a KV cache. Prompts of different lengths share one batch
 * (left padding masked by keyStart); each row stops on its own (eos, stop string, length) and the
 * loop ends when all have. One small read-back per step: the sampled ids the host must check.
 */
export async function generate(model: LlamaModel, prompts: readonly (readonly number[])[], options: GenerateOptions): Promise<Completion[]> {
  const gpu: Gpu = model.gpu;
  const sampling: SamplingOptions = { ...DEFAULT_SAMPLING, ...options };
  const eos = new Set(options.eosTokenIds ?? eosIds(model.config.eos_token_id));
  const stops = options.stop ?? [];
  if (stops.length && !options.decode) throw new Error('generate: stop strings need a decode function');
  const batch = prompts.length;
  const { width, ids, positions, keyStart } = leftPad(prompts);
  if (width + options.maxNewTokens > model.config.max_position_embeddings) {
    throw new Error(`generate: ${width} prompt + ${options.maxNewTokens} new tokens exceed the model's ${model.config.max_position_embeddings} positions`);
  }
  const cache = new KVCache(gpu, model.config, batch, width + options.maxNewTokens);
  const keyStartTensor = gpu.keep(gpu.tensor(keyStart, [batch], 'u32'));
  const results: Completion[] = prompts.map(() => ({ tokens: [], finishReason: 'length' }));
  const done = new Array<boolean>(batch).fill(false);
  let input: Tensor = gpu.keep(gpu.tensor(ids, [batch, width], 'u32'));
  let position = gpu.keep(gpu.tensor(positions, [batch, width], 'u32'));
  const nextPosition = prompts.map((p) => p.length);
  try {
    for (let step = 0; step < options.maxNewTokens && done.includes(false); step++) {
      const tokens = noGrad(() =>
        gpu.tidy(() => {
          const steps = input.shape[1];
          const hidden = model.forward(input, { positions: position, keyStart: keyStartTensor, cache });
          // Left padding puts every row's newest token in the last column.
          const lastRows = gpu.tensor(Array.from({ length: batch }, (_, b) => b * steps + steps - 1), [batch], 'u32');
          return sampleTokens(model.logits(embedding(lastRows, hidden)), sampling, step);
        }),
      );
      const sampled = await gpu.readU32(tokens);
      input.dispose();
      position.dispose();
      input = view(tokens, [batch, 1]);
      tokens.dispose();
      position = gpu.keep(gpu.tensor(nextPosition.map((p) => p + step), [batch, 1], 'u32'));
      for (let b = 0; b < batch; b++) {
        if (done[b]) continue;
        const r = results[b];
        r.tokens.push(sampled[b]);
        if (eos.has(sampled[b])) {
          r.finishReason = 'eos';
          done[b] = true;
        } else if (stops.length) {
          const text = options.decode!(r.tokens);
          if (stopIndex(text, stops) >= 0) {
            r.finishReason = 'stop';
            done[b] = true;
          }
        }
      }
      options.onStep?.(step + 1, results.reduce((n, r) => n + r.tokens.length, 0));
    }
  } finally {
    input.dispose();
    position.dispose();
    keyStartTensor.dispose();
    cache.dispose();
  }
  return results;
}
