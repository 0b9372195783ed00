import type { RuntimeDevice, TritonEvaluation, TritonReward, TritonRunner } from '../triton-runner.js';
import type { GradeResult, Grader, GradingInput } from '../types.js';

export interface TritonGraderOptions {
  readonly runner: TritonRunner;
  readonly reward: TritonReward;
  /** The example field naming the kernel problem (default `problem`). */
  readonly problemField?: string;
  /** Shared between the graders of one reward config, so the four rewards cost one evaluation. */
  readonly evaluations: TritonEvaluations;
}

/**
 * One evaluation per completion, however many Triton rewards read it. Keyed on the GradingInput object,
 * which the reward function hands unchanged to every component of a completion. The runtime device belongs
 * to the evaluation, not to one grader, so it is set here, once per reward config.
 */
export class TritonEvaluations {
  private readonly cache = new WeakMap<GradingInput, Promise<TritonEvaluation>>();

  constructor(private readonly runtimeDevice?: RuntimeDevice) {}

  get(runner: TritonRunner, problem: string, input: GradingInput): Promise<TritonEvaluation> {
    let evaluation = this.cache.get(input);
    if (!evaluation) {
      evaluation = runner.evaluate(problem, input.completion, undefined, this.runtimeDevice);
      this.cache.set(input, evaluation);
    }
    return evaluation;
  }
}

/** What the correctness reason says before the runner's anti-reward-hacking findings (which zero it). */
export const HACKS_MARKER = ' [hacks: ';

/** One of the Triton runner's rewards (formatting, compilation, correctness, runtime) as a grader. */
export class TritonGrader implements Grader {
  constructor(private readonly options: TritonGraderOptions) {}

  async grade(input: GradingInput): Promise<GradeResult> {
    const field = this.options.problemField ?? 'problem';
    const problem = input.example[field];
    if (typeof problem !== 'string') throw new Error(`the example has no kernel problem name in '${field}'`);
    const evaluation = await this.options.evaluations.get(this.options.runner, problem, input);
    const reward = evaluation.rewards[this.options.reward];
    const hacks = evaluation.hacks.length ? `${HACKS_MARKER}${evaluation.hacks.join('; ')}]` : '';
    return { score: reward.score, reason: reward.reason + (this.options.reward === 'correctness' ? hacks : '') };
  }
}
