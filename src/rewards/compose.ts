import { checkGuarded, describeError, gradeGuarded } from './guard.js';
import type { ComponentScore, CompletionScore, Grader, GradingInput, RewardFunction } from './types.js';

export interface Gate {
  /** The component whose score decides whether this one counts. */
  readonly component: string;
  /** This component counts only when the gate's score is at least this (default 1: fully passed). */
  readonly minScore?: number;
}

export interface RewardComponent {
  readonly name: string;
  readonly grader: Grader;
  readonly weight: number;
  readonly gate?: Gate;
  readonly timeoutMs: number;
}

/**
 * A weighted sum of graders with gates ("correctness counts only if the format passed"). Every component
 * grades every completion, concurrently and guarded (see gradeGuarded); a gated-out component is still
 * reported with its score, marked as not counted.
 */
export class ComposedReward implements RewardFunction {
  readonly componentNames: readonly string[];

  constructor(private readonly components: readonly RewardComponent[]) {
    const names = components.map((c) => c.name);
    if (new Set(names).size !== names.length) throw new Error(`reward components must have distinct names: ${names.join(', ')}`);
    for (const { name, gate } of components) {
      if (gate && (!names.includes(gate.component) || gate.component === name)) {
        throw new Error(`component '${name}' is gated on '${gate.component}', which is not another component`);
      }
    }
    this.componentNames = names;
  }

  score(batch: readonly GradingInput[]): Promise<CompletionScore[]> {
    return Promise.all(batch.map((input) => this.scoreOne(input)));
  }

  async check(probe: GradingInput): Promise<void> {
    const failures = await Promise.all(
      this.components.map((c) =>
        checkGuarded(c.grader, probe, c.timeoutMs).then(
          () => null,
          (error: unknown) => `reward component '${c.name}': ${describeError(error)}`,
        ),
      ),
    );
    const problems = failures.filter((f) => f !== null);
    if (problems.length) throw new Error(`the reward's graders are not ready:\n  ${problems.join('\n  ')}`);
  }

  async close(): Promise<void> {
    await Promise.all(this.components.map((c) => c.grader.close?.()));
  }

  private async scoreOne(input: GradingInput): Promise<CompletionScore> {
    const results = await Promise.all(this.components.map((c) => gradeGuarded(c.grader, input, c.timeoutMs)));
    const raw = new Map(this.components.map((c, i) => [c.name, results[i].score]));
    const components: Record<string, ComponentScore> = {};
    let total = 0;
    this.components.forEach((component, i) => {
      const { gate, weight } = component;
      const counted = !gate || (raw.get(gate.component) ?? 0) >= (gate.minScore ?? 1);
      components[component.name] = { ...results[i], weight, counted };
      if (counted) total += weight * results[i].score;
    });
    return { total, components };
  }
}
