import { join } from 'node:path';

import { JsonLinesProcess, type JsonObject } from './json-lines-process.js';
import type { GradeResult } from './types.js';

/** The runner's rewards, each in [0, 1] and reported separately (see kernels/README.md). */
export const TRITON_REWARDS = ['formatting', 'compilation', 'correctness', 'runtime'] as const;
export type TritonReward = (typeof TRITON_REWARDS)[number];

/**
 * Where the runtime reward is measured: `cuda` on the GPU (the runner's default when it has one), `cpu` the
 * Triton interpreter against torch on the CPU (tests the mechanism, says nothing of kernel speed), `off` not at
 * all. Left out, the runner's default applies (not measured without a GPU).
 */
export const RUNTIME_DEVICES = ['cuda', 'cpu', 'off'] as const;
export type RuntimeDevice = (typeof RUNTIME_DEVICES)[number];

export interface TritonEvaluation {
  readonly problem: string;
  readonly rewards: Readonly<Record<TritonReward, GradeResult>>;
  /** Anti-reward-hacking findings, e.g. "noop_same_output: …"; any of them zeroes correctness. */
  readonly hacks: readonly string[];
  /**
   * How the sandboxes ended: the tracing one ("ok: …", "timeout: …", "crashed: …"), then, when the
   * candidate launched kernels, "; replay ok: …"; "not run" when the allow-list rejected the code.
   */
  readonly sandbox: string;
  readonly seconds: number;
}

export interface TritonProblem {
  readonly name: string;
  readonly split: 'train' | 'test';
  readonly category: string;
  readonly prompt: { readonly system: string; readonly user: string };
}

export interface TritonRunnerOptions {
  /** The repository root: the runner is `<root>/.venv/bin/python -m kernels.runner`. */
  readonly repoRoot: string;
  readonly workers?: number;
  readonly timeLimitSeconds?: number;
  readonly memoryMb?: number;
  /** The longest request line the runner reads (default 64 MiB); a longer request is refused before it is sent. */
  readonly maxLineBytes?: number;
  readonly python?: string;
}

const DEFAULT_MAX_LINE_BYTES = 64 * 1024 * 1024;

/**
 * Client of the Python Triton runner (kernels/runner.py): a long-lived subprocess that grades generated
 * Triton code concurrently in sandboxes. If the runner dies, the evaluations in flight fail and the next
 * request starts a new runner.
 */
export class TritonRunner {
  private readonly process: JsonLinesProcess;

  constructor(options: TritonRunnerOptions) {
    const args = ['-m', 'kernels.runner'];
    if (options.workers !== undefined) args.push('--workers', String(options.workers));
    if (options.timeLimitSeconds !== undefined) args.push('--time-limit', String(options.timeLimitSeconds));
    if (options.memoryMb !== undefined) args.push('--memory-mb', String(options.memoryMb));
    const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    args.push('--max-line-bytes', String(maxLineBytes));
    this.process = new JsonLinesProcess({
      maxLineBytes,
      command: options.python ?? join(options.repoRoot, '.venv', 'bin', 'python'),
      args,
      cwd: options.repoRoot,
      readyType: 'ready',
    });
  }

  /** The runner's handshake: protocol version, workers, isolation in force. */
  hello(): Promise<JsonObject> {
    return this.process.hello();
  }

  /** How many runner processes were started so far (more than 1 means it was restarted). */
  get starts(): number {
    return this.process.starts;
  }

  /**
   * Grades one completion. A request the runner cannot serve (an unknown problem, a seed that is not an integer
   * in [0, 2^32 - 1]) rejects with the runner's error, which names the field.
   */
  async evaluate(
    problem: string,
    completion: string,
    signal?: AbortSignal,
    runtimeDevice?: RuntimeDevice,
    seed?: number,
  ): Promise<TritonEvaluation> {
    const request = {
      type: 'evaluate',
      problem,
      completion,
      ...(runtimeDevice ? { runtime_device: runtimeDevice } : {}),
      ...(seed !== undefined ? { seed } : {}),
    };
    const reply = await this.process.request(request, signal);
    if (reply.type !== 'result') throw new Error(`runner: ${String(reply.error ?? JSON.stringify(reply))}`);
    return reply as unknown as TritonEvaluation;
  }

  async problems(split?: 'train' | 'test'): Promise<TritonProblem[]> {
    const reply = await this.process.request({ type: 'problems', split: split ?? null });
    if (reply.type !== 'problems') throw new Error(`runner: ${String(reply.error ?? JSON.stringify(reply))}`);
    return reply.problems as TritonProblem[];
  }

  close(): Promise<void> {
    return this.process.close();
  }
}
