/**
 * Learning-rate schedules as pure functions of the optimizer step, matching transformers'
 * get_{constant,linear,cosine}_schedule_with_warmup: `step` is the 0-based index of the optimizer
 * step about to be taken (the LambdaLR's current step), so with warmup the first step has lr 0.
 */

export type LrSchedule =
  | { kind: 'constant'; lr: number; warmupSteps?: number }
  | { kind: 'linear'; lr: number; warmupSteps?: number; totalSteps: number }
  /** numCycles 0.5 (the default) decays once from lr to 0 over the steps after warmup. */
  | { kind: 'cosine'; lr: number; warmupSteps?: number; totalSteps: number; numCycles?: number };

/** Linear ramp from 0 (transformers divides by max(1, warmup)). */
function warmup(step: number, warmupSteps: number): number {
  return step / Math.max(1, warmupSteps);
}

/** The multiplier of the base lr at `step` (transformers' lr_lambda). */
export function lrMultiplier(schedule: LrSchedule, step: number): number {
  if (!Number.isInteger(step) || step < 0) throw new Error(`lrMultiplier: step must be a non-negative integer, got ${step}`);
  const warmupSteps = schedule.warmupSteps ?? 0;
  if (step < warmupSteps) return warmup(step, warmupSteps);
  switch (schedule.kind) {
    case 'constant':
      return 1;
    case 'linear':
      return Math.max(0, (schedule.totalSteps - step) / Math.max(1, schedule.totalSteps - warmupSteps));
    case 'cosine': {
      const progress = (step - warmupSteps) / Math.max(1, schedule.totalSteps - warmupSteps);
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * (schedule.numCycles ?? 0.5) * 2 * progress)));
    }
  }
}

/** The learning rate to use for optimizer step `step` (0-based). */
export function learningRate(schedule: LrSchedule, step: number): number {
  return schedule.lr * lrMultiplier(schedule, step);
}
