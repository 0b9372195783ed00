import { JsonLinesProcess } from '../json-lines-process.js';
import type { GradeResult, Grader, GradingInput } from '../types.js';

export interface ExternalProcessOptions {
  readonly command: string;
  readonly args?: readonly string[];
  readonly cwd?: string;
}

/**
 * Any executable that reads one JSON object per line on stdin — `{"id", "prompt", "completion", "example"}` —
 * and answers each with `{"id", "score", "reason"}` on stdout, in any order. The process is started on first
 * use, kept for later requests, and restarted if it dies or is killed for hanging. A line on its stdout that
 * is not JSON fails the requests in flight with that line as the reason.
 */
export class ExternalProcessGrader implements Grader {
  private readonly process: JsonLinesProcess;

  constructor(options: ExternalProcessOptions) {
    this.process = new JsonLinesProcess({ ...options, rejectNonJson: true });
  }

  /** The process starts and answers an empty completion with a JSON object (any score, or an error). */
  async check(probe: GradingInput, signal: AbortSignal): Promise<void> {
    await this.process.request({ prompt: probe.prompt, completion: '', example: probe.example }, signal);
  }

  async grade(input: GradingInput, signal: AbortSignal): Promise<GradeResult> {
    const reply = await this.process.request(
      { prompt: input.prompt, completion: input.completion, example: input.example },
      signal,
    );
    if (typeof reply.error === 'string') throw new Error(reply.error);
    return { score: Number(reply.score), reason: typeof reply.reason === 'string' ? reply.reason : '' };
  }

  close(): Promise<void> {
    return this.process.close();
  }
}
