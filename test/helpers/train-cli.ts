import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../python/run-python.js';
import { writeRandomCheckpoint } from './tiny-checkpoint.js';

export const TRAIN = join(REPO_ROOT, 'dist', 'src', 'cli', 'train.js');
export const SFT = join(REPO_ROOT, 'dist', 'src', 'cli', 'sft.js');
export const GENERATE = join(REPO_ROOT, 'dist', 'src', 'cli', 'generate.js');
const ENV = { ...process.env, XDG_RUNTIME_DIR: '/tmp' };

/**
 * A small random model and a reward whose scores vary between completions (the share of digits in
 * the answer), so every step of a train.js run really updates the adapter.
 */
export interface TinyRun {
  readonly model: string;
  readonly rewardConfig: string;
}

export function prepareTinyRun(): TinyRun {
  if (!existsSync(TRAIN)) throw new Error('dist/ is missing: npm test builds it first');
  const model = writeRandomCheckpoint();
  const rewardConfig = join(model, 'reward.json');
  writeFileSync(rewardConfig, JSON.stringify({ components: [{ name: 'digits', grader: { type: 'programmatic', module: './digits.mjs' } }] }));
  writeFileSync(
    join(model, 'digits.mjs'),
    'export default ({ completion }) => (completion.length ? (completion.match(/[0-9]/g) ?? []).length / completion.length : 0);\n',
  );
  return { model, rewardConfig };
}

export function trainArgs(run: TinyRun, outDir: string, extra: readonly string[] = []): string[] {
  return [
    TRAIN, '--model', run.model, '--task', 'tiny-arithmetic', '--reward-config', run.rewardConfig, '--out-dir', outDir,
    '--steps', '4', '--prompts-per-step', '2', '--num-generations', '4', '--max-new-tokens', '12', '--micro-batch-size', '3',
    '--eval-every', '2', '--eval-prompts', '3', '--save-every', '2', '--learning-rate', '0.02', '--lora-rank', '4', '--lora-dropout', '0.1', ...extra,
  ];
}

export interface Finished {
  readonly status: number | null;
  readonly stderr: string;
}

export function runTrain(run: TinyRun, outDir: string, extra: readonly string[] = []): Promise<Finished> {
  return runNode(trainArgs(run, outDir, extra));
}

/**
 * Runs a node script to its end. Asynchronously: a worker blocked in spawnSync for longer than
 * vitest's 60 s RPC timeout (a loaded machine) fails the whole run with "Timeout calling onTaskUpdate".
 */
export function runNode(args: readonly string[]): Promise<Finished & { readonly stdout: string }> {
  const child = spawn(process.execPath, args, { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/**
 * Starts train.js in the background, in a process group of its own (a test can signal the group,
 * as a terminal's Ctrl-C does); its stderr collects in `stderr()`. `launched`: through the
 * repository's train.js, which runs the program under the quiet launcher (src/cli/quiet-launch.ts).
 */
export function startTrain(run: TinyRun, outDir: string, extra: readonly string[] = [], launched = false): { child: ChildProcess; stderr: () => string; exited: Promise<Finished> } {
  const [program, ...args] = trainArgs(run, outDir, extra);
  const child = spawn(process.execPath, [launched ? join(REPO_ROOT, 'train.js') : program, ...args], { env: ENV, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<Finished>((resolve) => child.on('exit', (status) => resolve({ status, stderr })));
  return { child, stderr: () => stderr, exited };
}

/** Resolves once `ready()` holds (polled every 50 ms). */
export function waitFor(ready: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const poll = setInterval(() => {
      if (ready()) {
        clearInterval(poll);
        resolve();
      }
    }, 50);
  });
}

export const newDir = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));

export const metrics = (dir: string) =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
