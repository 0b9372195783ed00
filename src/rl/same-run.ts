import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { kebab } from '../io/settings-schema.js';
import { DEFAULT_CONFIG, type GrpoConfig } from './grpo-config.js';

/**
 * Settings that may change on resume: none of them changes what the run computes (recomputed layers
 * and skipped zero-advantage micro-batches give the same gradients; evaluations draw no random numbers).
 */
const FREE_ON_RESUME = new Set<keyof GrpoConfig>(['resume', 'overwrite', 'evalEvery', 'saveEvery', 'logCompletions', 'outDir', 'recompute', 'zeroAdvantageCompletions', 'skipEvalAtStart']);

/** What a setting newer than a checkpoint did before it existed, where that is not its default now. */
const BEFORE_IT_EXISTED: Partial<GrpoConfig> = { rolloutProjections: 'recompute' };

/** The files a run reads its prompts and rewards from, each with the sha256 of its content. */
export function inputFingerprints(config: GrpoConfig): Record<string, string> {
  const out: Record<string, string> = {};
  for (const path of [config.task, config.evalData, config.rewardConfig]) {
    if (path === undefined || !isFile(path)) continue;
    out[path] = createHash('sha256').update(readFileSync(path)).digest('hex');
  }
  return out;
}

/**
 * A resumed run continues exactly or not at all: every setting that changes the trajectory must
 * match the checkpoint's, and so must the content of the data and reward files. `--steps` may
 * change only with a constant learning rate: the cosine and linear schedules decay over --steps,
 * so a new value would change the learning rate of every step after the checkpoint.
 */
export function checkSameRun(
  saved: { config: Record<string, unknown>; inputs?: Record<string, string> },
  config: GrpoConfig,
  inputs: Record<string, string>,
): void {
  const problems: string[] = [];
  for (const key of Object.keys(config) as (keyof GrpoConfig)[]) {
    if (FREE_ON_RESUME.has(key) || (key === 'steps' && config.lrSchedule === 'constant')) continue;
    // A setting newer than the checkpoint had its default then (or did what BEFORE_IT_EXISTED says).
    const before = key in saved.config ? saved.config[key] : key in BEFORE_IT_EXISTED ? BEFORE_IT_EXISTED[key] : DEFAULT_CONFIG[key];
    if (JSON.stringify(before) === JSON.stringify(config[key])) continue;
    const why = key === 'steps' ? ` (the ${config.lrSchedule} learning-rate schedule decays over --steps)` : '';
    problems.push(`--${kebab(key)} ${JSON.stringify(before)} vs ${JSON.stringify(config[key])}${why}`);
  }
  // Checkpoints written before fingerprints were kept have none to compare.
  for (const [path, hash] of Object.entries(saved.inputs ?? {})) {
    if (inputs[path] !== undefined && inputs[path] !== hash) problems.push(`${path} changed since the checkpoint`);
  }
  if (problems.length) {
    throw new Error(`--resume: the checkpoint was made with different settings (${problems.join(', ')}); rerun with the same settings to continue exactly`);
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
