import type { PromptRow } from '../data/jsonl.js';
import type { LoadedModel } from '../model/load.js';
import type { CompletionScore, RewardFunction } from '../rewards/types.js';
import type { ChatMessage } from '../tokenizer/chat-template.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { rollout, type Completion } from './rollout.js';

export interface EvalResult {
  /** Mean total reward over the held-out prompts. */
  reward: number;
  /** Share of prompts whose greedy answer gets full marks from every reward component. */
  passAt1: number;
  /** Each component's mean score (0 where a gate kept it from counting), as the training metrics `rewards/<name>/mean`. */
  components: Readonly<Record<string, number>>;
  /** Every held-out prompt's greedy completion with its score, in prompt order. */
  completions: readonly ScoredCompletion[];
}

/** A completion as the run logs it (completions.jsonl, eval-completions.jsonl): text, how it ended, every component's score and reason. */
export interface ScoredCompletion {
  readonly prompt: string;
  readonly completion: string;
  readonly finish: Completion['finishReason'];
  readonly reward: number;
  readonly components: Readonly<Record<string, { readonly score: number; readonly counted: boolean; readonly reason: string }>>;
}

export function scoredCompletion(row: PromptRow, completion: Completion, score: CompletionScore): ScoredCompletion {
  return {
    prompt: row.prompt,
    completion: completion.text,
    finish: completion.finishReason,
    reward: score.total,
    components: Object.fromEntries(Object.entries(score.components).map(([k, v]) => [k, { score: v.score, counted: v.counted, reason: v.reason }])),
  };
}

/** The chat a row stands for: its system message, if any, then the prompt as the user's turn. */
export function promptMessages(row: PromptRow): ChatMessage[] {
  return [...(row.system ? [{ role: 'system', content: row.system }] : []), { role: 'user', content: row.prompt }];
}

/** The prompt as the model sees it: chat template (with the row's system message) when the tokenizer has one. */
export function encodePrompt(tokenizer: Tokenizer, row: PromptRow): number[] {
  return tokenizer.chatTemplate ? tokenizer.encodeChat(promptMessages(row), { addGenerationPrompt: true }) : tokenizer.encode(row.prompt);
}

export function scoreCompletions(reward: RewardFunction, rows: readonly PromptRow[], completions: readonly Completion[]): Promise<CompletionScore[]> {
  return reward.score(completions.map((c) => ({ prompt: rows[c.promptIndex].prompt, completion: c.text, example: rows[c.promptIndex] })));
}

/** Greedy decoding of each held-out prompt, scored by the task's reward. */
export async function evaluateHeldOut(loaded: LoadedModel, rows: readonly PromptRow[], reward: RewardFunction, maxNewTokens: number): Promise<EvalResult> {
  if (!rows.length) return { reward: NaN, passAt1: NaN, components: {}, completions: [] };
  const eos = loaded.tokenizer.eosTokenId;
  const completions = await rollout(loaded.model, loaded.tokenizer, rows.map((r) => encodePrompt(loaded.tokenizer, r)), {
    numGenerations: 1,
    generationBatchSize: 32,
    maxNewTokens,
    temperature: 0,
    eosTokenIds: eos === undefined ? undefined : [eos],
  });
  const scores = await scoreCompletions(reward, rows, completions);
  const fullMarks = (s: CompletionScore) => Object.values(s.components).reduce((n, c) => n + Math.max(0, c.weight), 0);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const names = Object.keys(scores[0].components);
  return {
    reward: mean(scores.map((s) => s.total)),
    passAt1: mean(scores.map((s) => (s.total >= fullMarks(s) - 1e-9 ? 1 : 0))),
    components: Object.fromEntries(names.map((name) => [name, mean(scores.map((s) => (s.components[name].counted ? s.components[name].score : 0)))])),
    completions: completions.map((c, i) => scoredCompletion(rows[c.promptIndex], c, scores[i])),
  };
}

/** A held-out evaluation as a metrics row: `eval/reward`, `eval/pass@1` and `eval/rewards/<name>/mean`. */
export function evalMetrics(step: number, result: EvalResult): Record<string, number> {
  return {
    step,
    'eval/reward': result.reward,
    'eval/pass@1': result.passAt1,
    ...Object.fromEntries(Object.entries(result.components).map(([name, value]) => [`eval/rewards/${name}/mean`, value])),
  };
}
