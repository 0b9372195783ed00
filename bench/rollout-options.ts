// The rollout every GRPO-shaped bench measures, with the same flags and defaults: the task's first
// --prompts rows × --generations samples of ≤ --new tokens (8 × 4 × 128 on arithmetic, the
// configuration the TRL comparison uses).
export const ROLLOUT_OPTIONS = {
  task: { type: 'string', default: 'arithmetic' },
  prompts: { type: 'string', default: '8' },
  generations: { type: 'string', default: '4' },
  new: { type: 'string', default: '128' },
} as const;
