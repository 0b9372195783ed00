import type { Gpu } from '../gpu/gpu.js';
import type { Tensor } from '../gpu/tensor.js';
import type { LayerKeyValues, LlamaModel, PackedPositions } from '../model/llama.js';
import type { ProjectionStore } from '../model/projection-store.js';
import { lmHeadLogprobs } from '../nn/lm-head-logprobs.js';
import { gatherRows, view } from '../ops/layout.js';

export interface SequenceBatch {
  /**
   * [B, W] u32: prompt then completion, right-padded; with shared prompts, each row's continuation
   * of its prompt; [1, N] when `packed` (the rows' real positions one after another).
   */
  ids: Tensor;
  positions: Tensor;
  /** [B·W] u32 (or [N] when packed): the token each position predicts. */
  targets: Tensor;
  /** [B, W] f32: 1 where the position predicts a completion token. */
  mask: Tensor;
  width: number;
  /** Completion tokens per sequence. */
  lengths: number[];
  /** Prompts computed once for the rows that continue them (sharedPromptBatch); absent: every row holds its whole prompt. */
  prompts?: PromptBatch;
  /**
   * Where the real positions, packed one after another so that the products, norms and the LM head
   * skip the padding, sit in the [B, W] layout; absent: ids are [B, W] with their padding.
   */
  packed?: PackedPositions;
  /**
   * The linears' outputs at these positions, kept from the forwards that sampled the sequences
   * (SequenceInput.projections): u32 slots of `store` for the rows (as ids) and the prompts.
   */
  projections?: {
    store: ProjectionStore;
    rows: Tensor;
    prompts?: Tensor;
    /** The slot of each row of the LM head's input (the layout where each is one the sampling predicted from), when the store keeps logits. */
    logitSlots?: number[];
  };
  /** Token positions the forward computes, padding included. */
  computedPositions: number;
  /** Of those, real tokens (not padding). */
  computedTokens: number;
}

/** Distinct prompts, left-padded, without their last token (each continuing row starts with it). */
export interface PromptBatch {
  /** [N, P] u32. */
  ids: Tensor;
  /** [N, P] u32: 0 over the padding, then 0, 1, … */
  positions: Tensor;
  /** [N] u32: the first real token of each prompt row. */
  keyStart: Tensor;
  /** [B] u32: the prompt row each sequence continues. */
  rows: Tensor;
  /** [B] u32: keyStart of each sequence's prompt row (its keys come first). */
  rowKeyStart: Tensor;
}

export interface SequenceInput {
  promptIds: readonly number[];
  completionIds: readonly number[];
  /** Masked out entirely (e.g. truncated completions when masking them is on). */
  masked?: boolean;
  /**
   * Where the forwards that sampled this sequence left its linears' outputs, with the weights it is
   * now trained on: the store slot of each position of prompt + completion but the last.
   */
  projections?: { store: ProjectionStore; slots: readonly number[] };
}

/** A slot past every store: reads a zero row (padding, and the last token, which no sampling forward ran). */
const NO_SLOT = 0xffff_ffff;

/** The store all sequences' projections share, or null when no sequence has projections; a mixture is refused. */
function projectionStore(op: string, sequences: readonly SequenceInput[]): ProjectionStore | null {
  const store = sequences[0].projections?.store ?? null;
  for (const s of sequences) {
    if ((s.projections?.store ?? null) !== store) throw new Error(`${op}: either every sequence has its projections in one store or none has`);
    if (s.projections && s.projections.slots.length !== s.promptIds.length + s.completionIds.length - 1) {
      throw new Error(`${op}: ${s.projections.slots.length} projection slots for a sequence of ${s.promptIds.length} + ${s.completionIds.length} tokens (one per token but the last)`);
    }
  }
  return store;
}

/** The slot of position t of a sequence, NO_SLOT past its last computed position. */
const slotAt = (s: SequenceInput, t: number): number => s.projections?.slots[t] ?? NO_SLOT;

function checkPrompts(op: string, sequences: readonly SequenceInput[]): void {
  if (sequences.length === 0) throw new Error(`${op}: no sequences`);
  // The last prompt position predicts the first completion token, so a prompt cannot be empty.
  if (sequences.some((s) => s.promptIds.length === 0)) throw new Error(`${op}: a sequence has an empty prompt`);
}

/** Lays out prompt+completion sequences so that log π of each completion token sits under the mask. */
export function sequenceBatch(gpu: Gpu, sequences: readonly SequenceInput[], padId = 0): SequenceBatch {
  checkPrompts('sequenceBatch', sequences);
  const store = projectionStore('sequenceBatch', sequences);
  const width = Math.max(...sequences.map((s) => s.promptIds.length + s.completionIds.length));
  const ids: number[] = [];
  const targets: number[] = [];
  const mask: number[] = [];
  for (const { promptIds, completionIds, masked } of sequences) {
    const tokens = [...promptIds, ...completionIds];
    for (let t = 0; t < width; t++) {
      ids.push(tokens[t] ?? padId);
      targets.push(tokens[t + 1] ?? padId);
      // Position t predicts token t+1, a completion token when t+1 ∈ [prompt, prompt + completion).
      mask.push(!masked && t + 1 >= promptIds.length && t + 1 < tokens.length ? 1 : 0);
    }
  }
  const batch = sequences.length;
  return {
    ids: gpu.tensor(ids, [batch, width], 'u32'),
    positions: gpu.tensor(sequences.flatMap(() => Array.from({ length: width }, (_, t) => t)), [batch, width], 'u32'),
    targets: gpu.tensor(targets, [batch * width], 'u32'),
    mask: gpu.tensor(mask, [batch, width]),
    width,
    lengths: sequences.map((s) => s.completionIds.length),
    ...(store && { projections: { store, rows: gpu.tensor(sequences.flatMap((s) => Array.from({ length: width }, (_, t) => slotAt(s, t))), [batch * width], 'u32') } }),
    computedPositions: batch * width,
    computedTokens: sequences.reduce((n, s) => n + s.promptIds.length + s.completionIds.length, 0),
  };
}

const samePrompt = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * The layout of sequenceBatch computed with each prompt once: consecutive sequences with the same
 * prompt (a GRPO group) share one row of `prompts`, which holds the prompt without its last token,
 * left-padded. Each sequence row is that last token then the completion, at positions continuing
 * the prompt, and attends to its prompt's keys before its own. The log-probs under the mask, the
 * loss and its gradients are those of sequenceBatch; only the prompt work (and, with LoRA
 * dropout, the prompt's dropout draw, now one per group) is shared.
 */
export function sharedPromptBatch(gpu: Gpu, sequences: readonly SequenceInput[], padId = 0): SequenceBatch {
  checkPrompts('sharedPromptBatch', sequences);
  const store = projectionStore('sharedPromptBatch', sequences);
  const prompts: (readonly number[])[] = [];
  /** The first sequence of each prompt row: its prompt's projections stand for the group's. */
  const firstOfPrompt: SequenceInput[] = [];
  const rows: number[] = [];
  for (const s of sequences) {
    if (!prompts.length || !samePrompt(prompts[prompts.length - 1], s.promptIds)) {
      prompts.push(s.promptIds);
      firstOfPrompt.push(s);
    }
    rows.push(prompts.length - 1);
  }
  const prefixWidth = Math.max(...prompts.map((p) => p.length - 1));
  const promptKeyStart = prompts.map((p) => prefixWidth - (p.length - 1));
  // A row predicts its completion: the prompt's last token, then every completion token but the
  // last (which predicts nothing); an empty completion keeps one position, under a zero mask.
  const real = sequences.map((s) => Math.max(1, s.completionIds.length));
  const width = Math.max(...real);
  const batch = sequences.length;
  const packed = real.reduce((a, b) => a + b, 0);
  const ids: number[] = [];
  const positions: number[] = [];
  const targets: number[] = [];
  const mask: number[] = [];
  const slots: number[] = [];
  const slotRows: number[] = [];
  const projectionSlots: number[] = [];
  sequences.forEach((sequence, b) => {
    const { promptIds, completionIds, masked } = sequence;
    const tokens = [promptIds[promptIds.length - 1], ...completionIds];
    for (let t = 0; t < width; t++) {
      mask.push(!masked && t < completionIds.length ? 1 : 0);
      // Padding is left out of a packed batch (and points past its positions).
      if (t >= real[b] && packed < batch * width) {
        slots.push(packed);
        continue;
      }
      slots.push(slotRows.length);
      slotRows.push(b * width + t);
      ids.push(tokens[t] ?? padId);
      positions.push(promptIds.length - 1 + t);
      targets.push(tokens[t + 1] ?? padId);
      projectionSlots.push(t < real[b] ? slotAt(sequence, promptIds.length - 1 + t) : NO_SLOT);
    }
  });
  const rowShape = packed < batch * width ? [1, packed] : [batch, width];
  const sequenceRows: Omit<SequenceBatch, 'prompts'> = {
    ids: gpu.tensor(ids, rowShape, 'u32'),
    positions: gpu.tensor(positions, rowShape, 'u32'),
    targets: gpu.tensor(targets, [ids.length], 'u32'),
    mask: gpu.tensor(mask, [batch, width]),
    width,
    lengths: sequences.map((s) => s.completionIds.length),
    // Every row here predicts a completion token (the prompt's last, then all but the completion's
    // last), so the sampling kept its logits.
    ...(store && { projections: { store, rows: gpu.tensor(projectionSlots, [projectionSlots.length], 'u32'), ...(store.logits && { logitSlots: projectionSlots }) } }),
    computedPositions: prompts.length * prefixWidth + ids.length,
    computedTokens: prompts.reduce((n, p) => n + p.length - 1, 0) + packed,
    ...(packed < batch * width && {
      packed: { slots: gpu.tensor(slots, [batch * width], 'u32'), rows: gpu.tensor(slotRows, [packed], 'u32'), shape: [batch, width], lengths: real },
    }),
  };
  // Every prompt is a single token: the rows hold them whole and there is nothing to share.
  if (prefixWidth === 0) return sequenceRows;
  const padded = prompts.map((p, n) => [...Array<number>(promptKeyStart[n]).fill(padId), ...p.slice(0, -1)]);
  const promptSlots = firstOfPrompt.flatMap((s, n) => Array.from({ length: prefixWidth }, (_, c) => (c < promptKeyStart[n] ? NO_SLOT : slotAt(s, c - promptKeyStart[n]))));
  return {
    ...sequenceRows,
    ...(store && { projections: { ...sequenceRows.projections!, prompts: gpu.tensor(promptSlots, [promptSlots.length], 'u32') } }),
    prompts: {
      ids: gpu.tensor(padded.flat(), [prompts.length, prefixWidth], 'u32'),
      positions: gpu.tensor(promptKeyStart.flatMap((start) => Array.from({ length: prefixWidth }, (_, t) => Math.max(0, t - start))), [prompts.length, prefixWidth], 'u32'),
      keyStart: gpu.tensor(promptKeyStart, [prompts.length], 'u32'),
      rows: gpu.tensor(rows, [batch], 'u32'),
      rowKeyStart: gpu.tensor(rows.map((r) => promptKeyStart[r]), [batch], 'u32'),
    },
  };
}

/** How many model forwards completionLogprobs runs on these sequences: the shared prompts (unless each is one token), then the rows. */
export function modelForwards(sequences: readonly SequenceInput[], sharedPrompts: boolean): number {
  return sharedPrompts && sequences.some((s) => s.promptIds.length > 1) ? 2 : 1;
}

/** Per-position log-probs [B, W] (recorded for autograd when the model has trainable weights) and entropy [B, W]. */
export function completionLogprobs(model: LlamaModel, batch: SequenceBatch, chunkRows = 256): { logprobs: Tensor; entropy: Tensor } {
  const { prompts, packed, projections } = batch;
  const [rows, width] = packed?.shape ?? batch.ids.shape;
  const known = (slots: Tensor | undefined) => (projections && slots ? { projections: { store: projections.store, read: slots } } : {});
  let hidden: Tensor;
  if (prompts) {
    const prefix: LayerKeyValues = { keys: [], values: [] };
    // The prompts' own outputs are not needed, only every layer's keys and values.
    model.forward(prompts.ids, { positions: prompts.positions, keyStart: prompts.keyStart, keyValuesOut: prefix, ...known(projections?.prompts) }).dispose();
    hidden = model.forward(batch.ids, { positions: batch.positions, keyStart: prompts.rowKeyStart, prefix: { ...prefix, rows: prompts.rows }, packed, ...known(projections?.rows) });
  } else {
    hidden = model.forward(batch.ids, { positions: batch.positions, packed, ...known(projections?.rows) });
  }
  const logitSlots = projections?.logitSlots;
  const knownLogits = logitSlots && ((r0: number, r1: number) => projections.store.readLogits(logitSlots.slice(r0, r1)));
  const { logprobs, entropy } = lmHeadLogprobs(hidden, model.lmHead, batch.targets, chunkRows, knownLogits);
  // Padding slots read as log-prob and entropy 0 (the mask is 0 there).
  const slotted = (t: Tensor) => (packed ? gatherRows(view(t, [t.size, 1]), packed.slots, packed.rows) : t);
  return { logprobs: view(slotted(logprobs), [rows, width]), entropy: view(slotted(entropy), [rows, width]) };
}
