import { beforeAll, describe, expect, it } from 'vitest';
import { noGrad } from '../src/autograd/grad-node.js';
import { distinctPrompts, generate, leftPad } from '../src/generate/generate.js';
import { KVCache } from '../src/model/kv-cache.js';
import { parseHfConfig } from '../src/io/hf-config.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { serializeSafetensors } from '../src/io/safetensors-writer.js';
import { initialLlamaWeights } from '../src/io/random-weights.js';
import { LlamaModel } from '../src/model/llama.js';
import { useGpu } from './helpers/gpu.js';

const gpu = useGpu();

// A random byte-vocabulary model: its output is gibberish, but every property below is about the
// sampling loop, not about what the model knows.
const config = parseHfConfig(
  {
    architectures: ['LlamaForCausalLM'], hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2,
    num_attention_heads: 4, num_key_value_heads: 2, head_dim: 8, vocab_size: 259, rms_norm_eps: 1e-5,
    rope_theta: 10000, max_position_embeddings: 128, tie_word_embeddings: true,
  },
  'test config',
);
const decode = (ids: readonly number[]) => ids.map((id) => String.fromCharCode(65 + (id % 26))).join('');

describe('generate', () => {
  let model: LlamaModel;
  beforeAll(() => {
    model = new LlamaModel(gpu(), config, SafetensorsFile.fromBytes(serializeSafetensors(initialLlamaWeights(config, 5, 0.5))));
  });
  const prompts = [[10, 20, 30, 40, 50, 60], [7], [100, 101, 102]];

  it('left-pads prompts so their last tokens line up, with per-row positions and key starts', () => {
    expect(leftPad([[5, 6, 7], [9]], 0)).toEqual({ width: 3, ids: [5, 6, 7, 0, 0, 9], positions: [0, 1, 2, 0, 0, 0], keyStart: [0, 2] });
    expect(() => leftPad([[1], []])).toThrow(/empty prompt/);
    // A megabyte-long prompt must not overflow the stack (no spread over token arrays).
    const long = Array.from({ length: 1 << 20 }, (_, i) => i % 250);
    const padded = leftPad([long, [1]]);
    expect(padded.width).toBe(1 << 20);
    expect(padded.ids[(1 << 20) - 1]).toBe(long[(1 << 20) - 1]);
    expect(padded.ids[2 * (1 << 20) - 1]).toBe(1);
    expect(padded.keyStart).toEqual([0, (1 << 20) - 1]);
  });

  it('a ragged batch decodes each prompt exactly as it decodes alone', async () => {
    const batched = await generate(model, prompts, { maxNewTokens: 10, temperature: 0, eosTokenIds: [] });
    for (const [i, prompt] of prompts.entries()) {
      const [alone] = await generate(model, [prompt], { maxNewTokens: 10, temperature: 0, eosTokenIds: [] });
      expect(batched[i].tokens).toEqual(alone.tokens);
    }
    expect(batched.every((c) => c.tokens.length === 10 && c.finishReason === 'length')).toBe(true);
  });

  it('sampling is reproducible for a seed and changes with it', async () => {
    const options = { maxNewTokens: 12, temperature: 1.2, topK: 40, topP: 0.95, eosTokenIds: [] };
    const a = await generate(model, prompts, { ...options, seed: 1 });
    const b = await generate(model, prompts, { ...options, seed: 1 });
    const c = await generate(model, prompts, { ...options, seed: 2 });
    expect(a.map((x) => x.tokens)).toEqual(b.map((x) => x.tokens));
    expect(a.map((x) => x.tokens)).not.toEqual(c.map((x) => x.tokens));
  });

  it('each row stops on its own at an EOS token, which is kept', async () => {
    const free = await generate(model, prompts, { maxNewTokens: 10, temperature: 0, eosTokenIds: [] });
    const eos = free[0].tokens[3];
    const stopped = await generate(model, prompts, { maxNewTokens: 10, temperature: 0, eosTokenIds: [eos] });
    expect(stopped[0].tokens).toEqual(free[0].tokens.slice(0, free[0].tokens.indexOf(eos) + 1));
    expect(stopped[0].finishReason).toBe('eos');
    for (const [i, c] of stopped.entries()) {
      const cut = free[i].tokens.indexOf(eos);
      expect(c.tokens).toEqual(cut < 0 ? free[i].tokens : free[i].tokens.slice(0, cut + 1));
    }
  });

  it('finished rows leave the batch without changing what any row samples (same tokens as keeping them)', async () => {
    const batch = [...prompts, [1, 2, 3, 4], [200], [55, 66], [9, 9, 9, 9, 9]];
    const options = { maxNewTokens: 14, temperature: 1.2, topK: 40, topP: 0.95, seed: 3 };
    const free = await generate(model, batch, { ...options, eosTokenIds: [] });
    // EOS ids taken from three rows' samples at different steps, so rows finish at different times.
    const eos = [free[0].tokens[2], free[2].tokens[6], free[4].tokens[9]];
    const kept = await generate(model, batch, { ...options, eosTokenIds: eos, dropFinishedRows: false });
    // Nothing stays behind: the cache, its regathered rows, the uploaded ids and positions.
    const live = gpu().pool.liveBytes;
    const dropped = await generate(model, batch, { ...options, eosTokenIds: eos });
    expect(gpu().pool.liveBytes).toBe(live);
    const expected = free.map((c) => {
      const cut = c.tokens.findIndex((t) => eos.includes(t));
      return cut < 0 ? c.tokens : c.tokens.slice(0, cut + 1);
    });
    expect(kept.map((c) => c.tokens)).toEqual(expected);
    expect(dropped).toEqual(kept);
    // The rows did leave at different steps, and at least one ran to the end alone or with few others.
    expect(new Set(dropped.map((c) => c.tokens.length)).size).toBeGreaterThanOrEqual(3);
    expect(dropped.some((c) => c.finishReason === 'length')).toBe(true);
  });

  it('finds the distinct prompts of a batch and the prompt of every row', () => {
    expect(distinctPrompts([[1, 2], [3], [1, 2], [3], [1, 2, 3]])).toEqual({ distinct: [[1, 2], [3], [1, 2, 3]], promptOf: [0, 1, 0, 1, 2] });
    // Prompts are compared by their ids, not by their string joins of adjacent digits.
    expect(distinctPrompts([[1, 23], [12, 3]]).promptOf).toEqual([0, 1]);
  });

  // Groups of G rows per prompt as a GRPO rollout makes them, with ragged prompt lengths.
  const groups = [[10, 20, 30, 40, 50, 60], [7], [100, 101, 102]].flatMap((p) => [p, p, p]);

  it('the cache puts copies of one row in runs of at most 4 that share the keys written before the copy', async () => {
    const cache = new KVCache(gpu(), config, 3, 8, 9);
    const runs = async () => {
      const { runs: tensor, severalRuns, length } = cache.sharedKeys;
      return { runs: Array.from(await tensor.toArray()), severalRuns, length };
    };
    expect(await runs()).toEqual({ runs: [0, 1, 1, 1, 2, 1], severalRuns: 0, length: 0 });
    cache.length = 5;
    cache.gatherRows([0, 0, 0, 0, 0, 1, 2, 2, 2]);
    // Runs of several sequences first.
    expect(await runs()).toEqual({ runs: [0, 4, 6, 3, 4, 1, 5, 1], severalRuns: 2, length: 5 });
    // Sequences leaving keep the others' runs; what they shared stays shared.
    cache.length = 6;
    cache.gatherRows([1, 2, 4, 5, 7]);
    expect(await runs()).toEqual({ runs: [0, 3, 3, 1, 4, 1], severalRuns: 1, length: 5 });
    cache.dispose();
  });

  it('a prompt prefilled once and copied to its rows gives the logits of prefilling every row', async () => {
    const logitsAfterOneStep = (share: boolean) =>
      noGrad(async () => {
        const { distinct, promptOf } = share ? distinctPrompts(groups) : { distinct: groups, promptOf: groups.map((_, i) => i) };
        const { width, ids, positions, keyStart } = leftPad(distinct);
        const cache = new KVCache(gpu(), config, distinct.length, width + 1, groups.length);
        const u32 = (values: readonly number[], shape: number[]) => gpu().tensor(values, shape, 'u32');
        model.forward(u32(ids, [distinct.length, width]), { positions: u32(positions, [distinct.length, width]), keyStart: u32(keyStart, [distinct.length]), cache });
        if (share) cache.gatherRows(promptOf);
        const rowKeyStart = promptOf.map((p) => keyStart[p]);
        const next = groups.map((_, i) => 1 + i * 17);
        const hidden = model.forward(u32(next, [groups.length, 1]), {
          positions: u32(groups.map((p) => p.length), [groups.length, 1]),
          keyStart: u32(rowKeyStart, [groups.length]),
          cache,
        });
        const logits = await model.logits(hidden).toArray();
        cache.dispose();
        return logits;
      });
    const shared = await logitsAfterOneStep(true);
    const unshared = await logitsAfterOneStep(false);
    expect(shared.length).toBe(groups.length * config.vocab_size);
    const largest = unshared.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    const worst = shared.reduce((m, x, i) => Math.max(m, Math.abs(x - unshared[i])), 0);
    expect(worst).toBeLessThanOrEqual(1e-6 * largest);
  });

  it('sequences that leave the cache leave the others where they are: the logits are those of a cache holding only them', async () => {
    // Three prompts prefilled, then sequences 2 and 0 go on (1 finished): no keys or values move,
    // the cache reads them by row. Against a cache that prefilled only those two prompts (the same
    // left-padded width, so the same positions).
    const [a, b, c] = [[10, 20, 30, 40, 50, 60], [7], [100, 101, 102]];
    const next = [35, 1];
    const logitsAfterStep = (start: readonly number[][], keep: number[] | null) =>
      noGrad(async () => {
        const { width, ids, positions, keyStart } = leftPad(start);
        const cache = new KVCache(gpu(), config, start.length, width + 1);
        const u32 = (values: readonly number[], shape: number[]) => gpu().tensor(values, shape, 'u32');
        model.forward(u32(ids, [start.length, width]), { positions: u32(positions, [start.length, width]), keyStart: u32(keyStart, [start.length]), cache });
        const before = cache.keys[0];
        const rows = keep ?? start.map((_, i) => i);
        if (keep) {
          cache.gatherRows(keep);
          expect(cache.keys[0]).toBe(before);
          expect(cache.kvRows).toBeDefined();
        }
        const hidden = model.forward(u32(next, [rows.length, 1]), {
          positions: u32(rows.map((r) => start[r].length), [rows.length, 1]),
          keyStart: u32(rows.map((r) => keyStart[r]), [rows.length]),
          cache,
        });
        const logits = await model.logits(hidden).toArray();
        cache.dispose();
        return logits;
      });
    const indexed = await logitsAfterStep([a, b, c], [2, 0]);
    const alone = await logitsAfterStep([c, a], null);
    expect(indexed.length).toBe(2 * config.vocab_size);
    const largest = alone.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    const worst = indexed.reduce((m, x, i) => Math.max(m, Math.abs(x - alone[i])), 0);
    expect(worst).toBeLessThanOrEqual(1e-6 * largest);
  });

  it('sharing each prompt’s prefill samples the same tokens as prefilling every row, also as rows finish', async () => {
    const options = { maxNewTokens: 14, temperature: 1.2, topK: 40, topP: 0.95, seed: 4 };
    const free = await generate(model, groups, { ...options, eosTokenIds: [], sharePrompts: false });
    // The rows of a group draw different samples (their draws are keyed by row).
    expect(new Set(free.slice(0, 3).map((c) => c.tokens.join())).size).toBeGreaterThan(1);
    const eos = [free[1].tokens[3], free[5].tokens[8]];
    for (const dropFinishedRows of [true, false]) {
      const unshared = await generate(model, groups, { ...options, eosTokenIds: eos, dropFinishedRows, sharePrompts: false });
      const shared = await generate(model, groups, { ...options, eosTokenIds: eos, dropFinishedRows });
      expect(shared).toEqual(unshared);
      expect(new Set(shared.map((c) => c.tokens.length)).size).toBeGreaterThanOrEqual(2);
    }
  });

  it('stops on a stop string once the decoded text contains it', async () => {
    const free = await generate(model, [prompts[1]], { maxNewTokens: 10, temperature: 0, eosTokenIds: [] });
    const stop = decode(free[0].tokens.slice(4, 6));
    const [c] = await generate(model, [prompts[1]], { maxNewTokens: 10, temperature: 0, eosTokenIds: [], stop: [stop], decode });
    expect(c.finishReason).toBe('stop');
    expect(decode(c.tokens)).toContain(stop);
    expect(decode(c.tokens.slice(0, -1))).not.toContain(stop);
    await expect(generate(model, [prompts[1]], { maxNewTokens: 2, stop: ['x'] })).rejects.toThrow(/stop strings need a decode function/);
  });

  it('names the step whose logits are not finite and leaves no buffers behind', async () => {
    const broken = initialLlamaWeights(config, 5, 0.5);
    const weights = broken['model.norm.weight'];
    weights.data[0] = Number.NaN;
    const nanModel = new LlamaModel(gpu(), config, SafetensorsFile.fromBytes(serializeSafetensors(broken)));
    const live = gpu().pool.liveBytes;
    await expect(generate(nanModel, prompts, { maxNewTokens: 5, eosTokenIds: [] })).rejects.toThrow(/logits are not finite \(NaN or ±inf\) in 3 of 3 rows at generated token 1:/);
    expect(gpu().pool.liveBytes).toBe(live);
  });

  it('refuses a request longer than the model’s positions', async () => {
    await expect(generate(model, [prompts[0]], { maxNewTokens: 200 })).rejects.toThrow(/exceed the model's 128 positions/);
  });
});
