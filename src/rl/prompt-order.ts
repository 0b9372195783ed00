import type { PromptRow } from '../data/jsonl.js';
import { seededRandom } from '../data/random.js';

/** The prompts of rollout r: consecutive rows of per-epoch seeded shuffles of the training set. */
export function rolloutPrompts(rows: readonly PromptRow[], promptsPerStep: number, seed: number, rolloutIndex: number): PromptRow[] {
  const orders = new Map<number, number[]>();
  const out: PromptRow[] = [];
  for (let i = rolloutIndex * promptsPerStep; i < (rolloutIndex + 1) * promptsPerStep; i++) {
    const epoch = Math.floor(i / rows.length);
    if (!orders.has(epoch)) orders.set(epoch, epochOrder(rows.length, seed, epoch));
    out.push(rows[orders.get(epoch)![i % rows.length]]);
  }
  return out;
}

/** A seeded permutation of 0…n−1 for one epoch. */
function epochOrder(n: number, seed: number, epoch: number): number[] {
  const random = seededRandom(seed * 1_000_003 + epoch);
  const order = [...Array(n).keys()];
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}
