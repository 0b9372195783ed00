/**
 * The reward step's vocabulary. A grader scores one completion in [0, 1] with a reason; a reward function
 * scores a batch of completions as a weighted, gated sum of named graders and keeps every component's score
 * so the trainer can log it per completion.
 */

/** One dataset row, as loaded (JSONL): graders read the fields they need (`target`, `numbers`, `problem`...). */
export type ExampleRow = Readonly<Record<string, unknown>>;

export interface GradingInput {
  readonly prompt: string;
  readonly completion: string;
  readonly example: ExampleRow;
}

export interface GradeResult {
  /** In [0, 1]. */
  readonly score: number;
  readonly reason: string;
  /** Set when the grader did not grade (threw, hung, returned no valid score): the 0 is not a judgement. */
  readonly failed?: boolean;
}

export interface Grader {
  /**
   * Scores one completion. `signal` aborts when the grader's time is up: graders that run work elsewhere
   * (a worker, a process) stop it; the caller has already moved on with a score of 0.
   */
  grade(input: GradingInput, signal: AbortSignal): Promise<GradeResult>;
  /**
   * Checks, before training starts, what can be checked without a real completion: a module
   * imports, a process starts and answers a probe. Throws what is wrong.
   */
  check?(probe: GradingInput, signal: AbortSignal): Promise<void>;
  /** Releases processes or workers the grader holds. */
  close?(): Promise<void>;
}

export interface ComponentScore extends GradeResult {
  readonly weight: number;
  /** False when the component's gate failed: its score is logged but contributes nothing to the total. */
  readonly counted: boolean;
}

export interface CompletionScore {
  /** Sum over components of weight × score, for the components whose gate passed. */
  readonly total: number;
  readonly components: Readonly<Record<string, ComponentScore>>;
}

/** The seam the trainer's reward step calls: one score per completion, in order, components included. */
export interface RewardFunction {
  readonly componentNames: readonly string[];
  score(batch: readonly GradingInput[]): Promise<CompletionScore[]>;
  /** Runs every grader's check (see Grader.check); throws naming the component that failed. */
  check(probe: GradingInput): Promise<void>;
  close(): Promise<void>;
}
