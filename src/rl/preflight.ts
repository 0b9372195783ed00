import { rowSource, type PromptRow } from '../data/jsonl.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { encodePrompt } from './evaluate.js';
import type { TaskData } from '../tasks/load.js';

export const noChatTemplate = (model: string) => `${model}: the tokenizer has no chat template (no chat_template in a tokenizer_config.json)`;

/**
 * A model folder without a chat template (no tokenizer_config.json, or none in it) feeds prompts as
 * plain text: said once. Rows with a system message cannot be fed that way (only a template places
 * it), so such a task is refused rather than trained with the system messages silently dropped.
 */
export function checkChatTemplate(tokenizer: Tokenizer, model: string, task: TaskData): void {
  if (tokenizer.chatTemplate) return;
  const withSystem = [...task.train, ...task.eval].find((row) => row.system !== undefined);
  const missing = noChatTemplate(model);
  if (withSystem) throw new Error(`${missing}, but ${rowSource(withSystem) ?? `a row of task ${task.name}`} has a system message, which only a chat template can place`);
  console.error(`warning: ${missing}; prompts are fed to the model as plain text`);
}

/** Rows named in full in a refusal; the rest are counted. */
const ROWS_LISTED = 10;

export interface ContextFit {
  readonly contextLength: number;
  readonly maxNewTokens: number;
  /** Leave the rows that do not fit out (with a note) instead of refusing to start. */
  readonly skip: boolean;
  readonly warn: (message: string) => void;
}

/**
 * Every training and held-out row must fit the model's context with room for a full completion;
 * otherwise the run would stop at whatever step first draws such a row. The rows that do not fit
 * are named by file:line (or by their place in a generated set), and either refused or left out.
 */
export function fitTaskToContext(task: TaskData, tokenizer: Tokenizer, fit: ContextFit): { task: TaskData; longestPrompt: number } {
  const room = fit.contextLength - fit.maxNewTokens;
  const tooLong: string[] = [];
  // A row can be in both sets (a JSONL task's held-out rows are its first rows): measured and named once.
  const lengths = new Map<PromptRow, number>();
  const keep = (rows: readonly PromptRow[], set: string) =>
    rows.filter((row, i) => {
      if (!lengths.has(row)) {
        lengths.set(row, encodePrompt(tokenizer, row).length);
        if (lengths.get(row)! > room) tooLong.push(`${rowSource(row) ?? `row ${i + 1} of the generated ${set} set`} (${lengths.get(row)} prompt tokens)`);
      }
      return lengths.get(row)! <= room;
    });
  const fitted = { ...task, train: keep(task.train, 'training'), eval: keep(task.eval, 'held-out') };
  let longestPrompt = 0;
  for (const length of lengths.values()) if (length <= room) longestPrompt = Math.max(longestPrompt, length);
  if (!tooLong.length) return { task, longestPrompt };
  const what = `${tooLong.length} data row${tooLong.length > 1 ? 's do' : ' does'} not fit the model's context of ${fit.contextLength} tokens with --max-new-tokens ${fit.maxNewTokens}`;
  const listed = tooLong.slice(0, ROWS_LISTED).join('\n  ') + (tooLong.length > ROWS_LISTED ? `\n  … and ${tooLong.length - ROWS_LISTED} more` : '');
  if (!fit.skip) throw new Error(`${what}:\n  ${listed}\nShorten them, lower --max-new-tokens, or pass --skip-long-rows to leave them out.`);
  if (!fitted.train.length) throw new Error(`${what}, and none is left to train on:\n  ${listed}`);
  fit.warn(`${what}; left out (--skip-long-rows):\n  ${listed}`);
  return { task: fitted, longestPrompt };
}
