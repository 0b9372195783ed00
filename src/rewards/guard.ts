import type { GradeResult, Grader, GradingInput } from './types.js';

/**
 * Runs a grader so that nothing it does can stop the reward step: a throw, a rejected promise, a hang past
 * `timeoutMs` or a score outside [0, 1] all become a score of 0 with the reason kept for the log.
 */
export async function gradeGuarded(grader: Grader, input: GradingInput, timeoutMs: number): Promise<GradeResult> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<GradeResult>((resolve) => {
    timer = setTimeout(() => {
      controller.abort();
      resolve({ score: 0, reason: `timed out after ${timeoutMs} ms`, failed: true });
    }, timeoutMs);
  });
  const graded = Promise.resolve()
    .then(() => grader.grade(input, controller.signal))
    .then(checkResult, (error: unknown) => ({ score: 0, reason: `grader failed: ${describeError(error)}`, failed: true }));
  try {
    return await Promise.race([graded, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function checkResult(result: GradeResult): GradeResult {
  const score = result?.score;
  if (typeof score !== 'number' || !Number.isFinite(score) || score < 0 || score > 1) {
    return { score: 0, reason: `grader returned an invalid score ${String(score)}`, failed: true };
  }
  return { score, reason: String(result.reason ?? '') };
}

/** Runs a grader's check within `timeoutMs`; throws what went wrong. */
export async function checkGuarded(grader: Grader, probe: GradingInput, timeoutMs: number): Promise<void> {
  if (!grader.check) return;
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new Error(`no answer to a probe within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    await Promise.race([grader.check(probe, controller.signal), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
