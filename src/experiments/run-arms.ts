import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { kebab } from '../io/settings-schema.js';
import { latestCheckpoint } from '../rl/checkpoint.js';
import { readArmRecord, writeArmRecord, type Arm, type ArmAttempt, type ArmRecord } from './experiment.js';

export interface RunnerOptions {
  /** The repository root: where train.js and sft.js are. */
  readonly root: string;
  /** Arms of all experiments take turns through this lock file: one training job at a time on the machine. */
  readonly queueLock: string;
  /** Progress notes. */
  readonly say: (message: string) => void;
  /** How often a queued arm looks at the lock again. */
  readonly pollMs?: number;
  /** How often the load average is sampled while an arm runs. */
  readonly loadSampleMs?: number;
}

/**
 * The commit the repository is at, with `-dirty` when a tracked file outside experiments/ differs from
 * it (the runs' own logs under experiments/ change while they run); undefined outside a git checkout.
 */
export function codeVersion(root: string): string | undefined {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    const changed = git('status', '--porcelain', '--untracked-files=no', '--', '.', ':(exclude)experiments');
    return git('rev-parse', 'HEAD') + (changed ? '-dirty' : '');
  } catch {
    return undefined;
  }
}

/** Samples the 1-minute load average until stopped; returns their mean and maximum. */
function sampleLoad(everyMs: number): () => NonNullable<ArmAttempt['load']> {
  const samples = [loadavg()[0]];
  const timer = setInterval(() => samples.push(loadavg()[0]), everyMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    samples.push(loadavg()[0]);
    const round = (x: number) => Math.round(x * 100) / 100;
    return { mean: round(samples.reduce((a, b) => a + b, 0) / samples.length), max: round(Math.max(...samples)), samples: samples.length, cpus: availableParallelism() };
  };
}

/** The command line of an arm's settings: `--kebab-name value`, lists comma-separated, true booleans as bare flags. */
export function settingsFlags(settings: Readonly<Record<string, unknown>>): string[] {
  return Object.entries(settings).flatMap(([key, value]) => {
    if (typeof value === 'boolean') return value ? [`--${kebab(key)}`] : [];
    return [`--${kebab(key)}`, Array.isArray(value) ? value.join(',') : String(value)];
  });
}

/**
 * How the arm's command continues from what its folder holds: a train arm with a checkpoint resumes
 * from it (bit for bit); a folder with logs but no checkpoint (stopped before the first save), or
 * an unfinished sft arm (sft.js cannot resume), starts afresh with --overwrite.
 */
export function continuation(arm: Arm): { flags: string[]; resumed: boolean } {
  if (arm.command === 'train' && latestCheckpoint(arm.runDir)) return { flags: ['--resume'], resumed: true };
  const started = ['metrics.jsonl', 'completions.jsonl', 'adapter'].some((name) => existsSync(join(arm.runDir, name)));
  return { flags: started ? ['--overwrite'] : [], resumed: false };
}

/**
 * Runs the arms one after another, each only if it has not finished (its arm.json says so), resuming
 * interrupted ones. Returns the names of arms that failed; a signal stops the current arm the way
 * train.js stops (checkpoint, then exit) and runs no further arm.
 */
export async function runArms(arms: readonly Arm[], options: RunnerOptions): Promise<string[]> {
  const failed: string[] = [];
  let stopping = false;
  let current: ReturnType<typeof spawn> | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    stopping = true;
    current?.kill(signal);
    options.say(`${signal}: stopping the current arm (train.js saves a checkpoint first) and running no further arm; the same command resumes`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    for (const arm of arms) {
      if (stopping) break;
      const record = readArmRecord(arm);
      if (record?.finished) {
        options.say(`${arm.name}: finished already, skipped`);
        continue;
      }
      const release = await takeQueue(options, arm.name, () => stopping);
      if (!release) break;
      try {
        const { flags, resumed } = continuation(arm);
        const argv = [join(options.root, `${arm.command}.js`), ...settingsFlags(arm.settings), '--out-dir', arm.runDir, ...flags];
        options.say(`${arm.name}: ${resumed ? 'resuming' : 'starting'} (log ${arm.runDir}.log)`);
        mkdirSync(arm.runDir, { recursive: true });
        const started = new Date();
        const commit = codeVersion(options.root);
        const stopSampling = sampleLoad(options.loadSampleMs ?? 30_000);
        const log = createWriteStream(`${arm.runDir}.log`, { flags: 'a' });
        log.write(`\n# ${started.toISOString()} node ${argv.map((a) => a.replace(options.root + '/', '')).join(' ')}\n`);
        current = spawn(process.execPath, argv, { cwd: options.root, stdio: ['ignore', 'pipe', 'pipe'] });
        current.stdout?.pipe(log, { end: false });
        current.stderr?.pipe(log, { end: false });
        const exitCode = await new Promise<number | null>((resolve) => current!.on('close', (code) => resolve(code)));
        current = undefined;
        await new Promise<void>((resolve) => log.end(resolve));
        const seconds = (Date.now() - started.getTime()) / 1000;
        const attempt: ArmAttempt = { started: started.toISOString(), seconds, exitCode, resumed, ...(commit ? { commit } : {}), load: stopSampling() };
        const next: ArmRecord = { argv: argv.map((a) => a.replace(options.root + '/', '')), attempts: [...(record?.attempts ?? []), attempt], finished: exitCode === 0 };
        writeArmRecord(arm, next);
        if (exitCode === 0) options.say(`${arm.name}: finished in ${(seconds / 60).toFixed(1)} min`);
        else {
          options.say(`${arm.name}: exited with status ${exitCode} after ${(seconds / 60).toFixed(1)} min (the end of ${arm.runDir}.log says why)`);
          if (!stopping) failed.push(arm.name);
        }
      } finally {
        release();
      }
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return failed;
}

/**
 * Waits for this runner's turn, then takes the queue lock. Runners take turns in the order they
 * started waiting (each waiter leaves a `<lock>.waiting.<pid>` file), so one with many arms does not
 * starve another between its arms. A lock or a waiter whose process is gone (killed) is stale and ignored.
 * Returns null, without the lock, when the runner is told to stop while it waits.
 */
async function takeQueue(options: RunnerOptions, armName: string, stopping: () => boolean): Promise<(() => void) | null> {
  const dir = dirname(options.queueLock);
  const waiterPrefix = `${basename(options.queueLock)}.waiting.`;
  const mine = join(dir, `${waiterPrefix}${process.pid}`);
  writeFileSync(mine, `${Date.now()}\n`);
  let said = false;
  try {
    for (;;) {
      if (stopping()) return null;
      const waiters = readdirSync(dir)
        .filter((name) => name.startsWith(waiterPrefix))
        .map((name) => ({ pid: Number(name.slice(waiterPrefix.length)), since: Number(readText(join(dir, name)) ?? Infinity) }))
        .filter((w) => w.pid === process.pid || isAlive(w.pid))
        .sort((a, b) => a.since - b.since || a.pid - b.pid);
      const holder = Number(readText(options.queueLock) ?? NaN);
      const first = waiters[0]?.pid === process.pid;
      // Only the first in line clears a stale lock, so no runner removes one another has just taken.
      if (first && Number.isInteger(holder) && !isAlive(holder)) {
        options.say(`queue lock ${options.queueLock} was held by process ${holder}, which is gone: taking it over`);
        rmSync(options.queueLock, { force: true });
      }
      if (first && tryLock(options.queueLock)) return () => rmSync(options.queueLock, { force: true });
      if (!said) options.say(`${armName}: queued behind ${Number.isInteger(holder) && isAlive(holder) ? `process ${holder}'s arm` : 'other runners'} (one training job at a time)`);
      said = true;
      await sleep(options.pollMs ?? 10_000);
    }
  } finally {
    rmSync(mine, { force: true });
  }
}

/** Creates the lock holding this process's id; false when another holds it. */
function tryLock(path: string): boolean {
  // Written whole under another name, then linked into place: no runner ever reads a half-written lock.
  const draft = `${path}.${process.pid}.tmp`;
  writeFileSync(draft, `${process.pid}\n`);
  try {
    linkSync(draft, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    rmSync(draft, { force: true });
  }
}

/** A small file's trimmed text, or undefined when it is gone (removed in between). */
function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
