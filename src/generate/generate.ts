import { noGrad } from '../autograd/grad-node.js';
import type { Gpu } from '../gpu/gpu.js';
import { KVCache } from '../model/kv-cache.js';
import type { LlamaModel } from '../model/llama.js';
import type { ProjectionStore } from '../model/projection-store.js';
import { embedding } from '../ops/embedding.js';
import { DEFAULT_SAMPLING, NON_FINITE_TOKEN, NonFiniteLogits, sampleTokens, type SamplingOptions } from './sampler.js';

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
  /**
   * Finished sequences leave the batch (default true): the cache is compacted to the live rows, so
   * decoding costs what the live sequences need. False keeps every row to the end (the samples are
   * the same either way); it is there to measure what dropping saves.
   */
  dropFinishedRows?: boolean;
  /**
   * Rows with the same prompt share its prefill (default true): each distinct prompt runs once and
   * its keys and values are copied to every row that continues it. False prefills every row (the
   * samples are the same either way); it is there to measure what sharing saves.
   */
  sharePrompts?: boolean;
  /** The linears' outputs of every forward are appended here (see Completion.projectionSlots). */
  projections?: ProjectionStore;
}

export interface Completion {
  tokens: number[];
  finishReason: FinishReason;
  /**
   * With GenerateOptions.projections: the store's slot of every token the forwards ran, prompt then
   * completion, one per position of the sequence but the last (the last sampled token is never run).
   */
  projectionSlots?: number[];
}

/** The most rows of logits generate() keeps in a store that keeps them: each distinct prompt's last position, then one per live row and decode step but the last. */
export function logitRows(prompts: readonly (readonly number[])[], maxNewTokens: number, sharePrompts = true): number {
  const distinct = sharePrompts ? distinctPrompts(prompts).distinct : prompts;
  return distinct.length + prompts.length * Math.max(0, maxNewTokens - 1);
}

/** Rows generate() appends to GenerateOptions.projections: each distinct prompt's padded prefill, then one per live row and decode step. */
export function projectionRows(prompts: readonly (readonly number[])[], maxNewTokens: number, sharePrompts = true): number {
  const distinct = sharePrompts ? distinctPrompts(prompts).distinct : prompts;
  const width = distinct.reduce((n, p) => Math.max(n, p.length), 0);
  return distinct.length * width + prompts.length * Math.max(0, maxNewTokens - 1);
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
 * The distinct prompts of a batch and, for every row, the index of its prompt among them (in order
 * of first appearance): a GRPO rollout samples G sequences from each prompt.
 */
export function distinctPrompts(prompts: readonly (readonly number[])[]): { distinct: (readonly number[])[]; promptOf: number[] } {
  const index = new Map<string, number>();
  const distinct: (readonly number[])[] = [];
  const promptOf = prompts.map((prompt) => {
    const key = prompt.join(',');
    let i = index.get(key);
    if (i === undefined) {
      i = distinct.push(prompt) - 1;
      index.set(key, i);
    }
    return i;
  });
  return { distinct, promptOf };
}

/**
 * Batched autoregressive sampling with a KV cache. Prompts of different lengths share one batch
 * (left padding masked by keyStart); each row stops on its own (eos, stop string, length) and the
 * loop ends when all have. A prompt that several rows share is prefilled once and its cache copied
 * to each of them. Finished rows leave the batch (the cache keeps only the live rows), so decoding
 * costs what the live sequences need; each row's random draws are keyed by its place in the
 * original batch, so the samples do not depend on when other rows finish. One small read-back per
 * step: the sampled ids the host must check.
 */
export async function generate(model: LlamaModel, prompts: readonly (readonly number[])[], options: GenerateOptions): Promise<Completion[]> {
  const gpu: Gpu = model.gpu;
  const sampling: SamplingOptions = { ...DEFAULT_SAMPLING, ...options };
  const eos = new Set(options.eosTokenIds ?? eosIds(model.config.eos_token_id));
  const stops = options.stop ?? [];
  if (stops.length && !options.decode) throw new Error('generate: stop strings need a decode function');
  const identity = (n: number) => Array.from({ length: n }, (_, i) => i);
  const shared = options.sharePrompts === false ? { distinct: prompts, promptOf: identity(prompts.length) } : distinctPrompts(prompts);
  const { width, ids, positions, keyStart: prefillKeyStart } = leftPad(shared.distinct);
  if (width + options.maxNewTokens > model.config.max_position_embeddings) {
    throw new Error(`generate: ${width} prompt + ${options.maxNewTokens} new tokens exceed the model's ${model.config.max_position_embeddings} positions`);
  }
  // Every distinct prompt has the width of the longest, so a row keeps its prompt's padding.
  const keyStart = shared.promptOf.map((p) => prefillKeyStart[p]);
  const cache = new KVCache(gpu, model.config, shared.distinct.length, width + options.maxNewTokens, prompts.length);
  const store = options.projections;
  const results: Completion[] = prompts.map(() => ({ tokens: [], finishReason: 'length', ...(store && { projectionSlots: [] }) }));
  const finished = prompts.map(() => false);
  /** The original row of each row in the batch. */
  let rows = identity(prompts.length);
  /** The row of the forward's output (and of the cache) that holds each batch row's latest state. */
  let stateRow = shared.promptOf;
  const upload = (values: readonly number[], shape: number[]) => gpu.keep(gpu.tensor(values, shape, 'u32'));
  let keyStartTensor = upload(prefillKeyStart, [shared.distinct.length]);
  let drawRows = upload(rows, [rows.length]);
  let input = upload(ids, [shared.distinct.length, width]);
  let position = upload(positions, [shared.distinct.length, width]);
  /** The slots of the forward that starts at `first`: the prefill's prompt tokens, or each live row's newest token. */
  const recordSlots = (first: number) => {
    if (cache.length === 0) {
      results.forEach((r, b) => {
        const p = shared.promptOf[b];
        const start = first + p * width + prefillKeyStart[p];
        for (let t = 0; t < prompts[b].length; t++) r.projectionSlots!.push(start + t);
      });
    } else {
      rows.forEach((b, row) => {
        if (!finished[b]) results[b].projectionSlots!.push(first + row);
      });
    }
  };
  try {
    for (let step = 0; step < options.maxNewTokens; step++) {
      const tokens = noGrad(() =>
        gpu.tidy(() => {
          const steps = input.shape[1];
          let projections: { store: ProjectionStore; write: number } | undefined;
          if (store) {
            const first = store.reserve(input.size);
            recordSlots(first);
            projections = { store, write: first };
          }
          const hidden = model.forward(input, { positions: position, keyStart: keyStartTensor, cache, projections });
          // Left padding puts every row's newest token in the last column.
          const lastRows = gpu.tensor(stateRow.map((r) => r * steps + steps - 1), [stateRow.length], 'u32');
          const logits = model.logits(embedding(lastRows, hidden));
          const tokens = sampleTokens(logits, sampling, step, drawRows);
          // After the sampling: the copy then ends the compute pass where the tokens' read-back ends it anyway.
          if (projections?.store.logits) projections.store.writeLogits(logits, stateRow.map((r) => projections.write + r * steps + steps - 1));
          return tokens;
        }),
      );
      const sampled = await gpu.readU32(tokens);
      tokens.dispose();
      const broken = sampled.filter((t) => t === NON_FINITE_TOKEN).length;
      if (broken) {
        throw new NonFiniteLogits(`the model's logits are not finite (NaN or ±inf) in ${broken} of ${sampled.length} rows at generated token ${step + 1}: its weights or adapters hold NaN/inf, or its activations overflow`);
      }
      rows.forEach((b, row) => {
        if (finished[b]) return;
        const r = results[b];
        r.tokens.push(sampled[row]);
        if (eos.has(sampled[row])) r.finishReason = 'eos';
        else if (stops.length && stopIndex(options.decode!(r.tokens), stops) >= 0) r.finishReason = 'stop';
        else return;
        finished[b] = true;
      });
      options.onStep?.(step + 1, results.reduce((n, r) => n + r.tokens.length, 0));
      if (finished.every(Boolean)) break;
      let next = rows.map((_, row) => row);
      if (options.dropFinishedRows !== false) next = next.filter((row) => !finished[rows[row]]);
      const gather = next.map((row) => stateRow[row]);
      if (gather.length !== cache.batch || gather.some((r, i) => r !== i)) {
        cache.gatherRows(gather);
        rows = next.map((row) => rows[row]);
        keyStartTensor.dispose();
        keyStartTensor = upload(rows.map((b) => keyStart[b]), [rows.length]);
        drawRows.dispose();
        drawRows = upload(rows, [rows.length]);
      }
      stateRow = identity(rows.length);
      input.dispose();
      position.dispose();
      input = upload(next.map((row) => sampled[row]), [rows.length, 1]);
      position = upload(rows.map((b) => prompts[b].length + step), [rows.length, 1]);
    }
  } finally {
    for (const t of [input, position, keyStartTensor, drawRows]) t.dispose();
    cache.dispose();
  }
  return results;
}
