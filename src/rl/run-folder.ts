import { linkSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

/** What a run leaves in its output folder; anything else there (the user's own files) is never touched. */
const RUN_ENTRY = /^(metrics\.jsonl|completions\.jsonl|eval-completions\.jsonl|curves\.svg|checkpoint-\d+|adapter|model)$/;
/** Temporary files and folders of writes a killed process left behind (checkpoints, log rewrites, --overwrite). */
const LEFTOVER = /^\.(checkpoint-\d+|metrics\.jsonl|completions\.jsonl|eval-completions\.jsonl)\.\d+(\.\d+)?\.tmp$|^\.replaced-\d+$/;
/** Where --overwrite gathers the old run before deleting it. */
const REPLACED_PREFIX = '.replaced-';

export interface RunFolderOptions {
  /** The run continues the one in the folder; undefined for a command that cannot resume. */
  readonly resume?: boolean;
  /** Replace whatever run the folder holds, as a whole. */
  readonly overwrite: boolean;
  /** How the command names the folder and its flags in messages, e.g. `--out-dir`. */
  readonly flag: string;
}

/** The lock file: who writes to the folder now. */
const LOCK_FILE = '.run.lock';

interface LockOwner {
  readonly pid: number;
  readonly host: string;
  readonly started: string;
}

/**
 * Prepares a run's output folder so that two runs never mix there: the folder is locked for this
 * process (a second writer is refused while the first lives); a folder that already holds a run
 * is refused unless the new run resumes it or replaces it as a whole (--overwrite). What killed
 * writes left behind is removed first. Returns the lock's release (also done when the process exits).
 */
export function prepareRunFolder(outDir: string, options: RunFolderOptions): () => void {
  mkdirSync(outDir, { recursive: true });
  const release = lockRunFolder(outDir, options.flag);
  try {
    clearRunFolder(outDir, options);
  } catch (error) {
    release();
    throw error;
  }
  return release;
}

function clearRunFolder(outDir: string, options: RunFolderOptions): void {
  for (const name of readdirSync(outDir)) if (LEFTOVER.test(name)) rmSync(join(outDir, name), { recursive: true, force: true });
  const previous = readdirSync(outDir).filter((name) => RUN_ENTRY.test(name)).sort();
  if (!previous.length || options.resume) return;
  if (!options.overwrite) {
    throw new Error(
      `${options.flag} ${outDir} already holds a run (${previous.join(', ')}). ` +
        `${options.resume === undefined ? 'Replace' : 'Continue it with --resume, replace'} it with --overwrite, or choose another ${options.flag}.`,
    );
  }
  // Gather the old run into one hidden folder first (renames), so the new run never starts next to half of it.
  const replaced = join(outDir, `${REPLACED_PREFIX}${process.pid}`);
  mkdirSync(replaced, { recursive: true });
  for (const name of previous) renameSync(join(outDir, name), join(replaced, name));
  rmSync(replaced, { recursive: true, force: true });
}

/**
 * Takes the folder's lock file (created with its content in one step, by a hard link, so no
 * process ever reads a half-written lock). A lock whose process is gone (kill -9, power loss) is
 * stale and replaced, with a note.
 */
function lockRunFolder(outDir: string, flag: string): () => void {
  const path = join(outDir, LOCK_FILE);
  const mine: LockOwner = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
  const draft = join(outDir, `${LOCK_FILE}.${process.pid}.tmp`);
  writeFileSync(draft, JSON.stringify(mine) + '\n');
  try {
    for (;;) {
      try {
        linkSync(draft, path);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const owner = readOwner(path);
      if (owner && owner.host !== mine.host) {
        throw new Error(`${flag} ${outDir} is locked by process ${owner.pid} on ${owner.host} (since ${owner.started}); if that run is gone, delete ${path}`);
      }
      if (owner && isAlive(owner.pid)) {
        throw new Error(`${flag} ${outDir} is in use by process ${owner.pid} (running since ${owner.started}); wait for it to finish or choose another ${flag}`);
      }
      console.error(`${path}: removing a stale lock (${owner ? `process ${owner.pid} is gone` : 'unreadable'})`);
      rmSync(path, { force: true });
    }
  } finally {
    rmSync(draft, { force: true });
  }
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    process.off('exit', release);
    if (readOwner(path)?.pid === process.pid) rmSync(path, { force: true });
  };
  process.on('exit', release);
  return release;
}

function readOwner(path: string): LockOwner | null {
  try {
    const owner = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockOwner>;
    return typeof owner.pid === 'number' && typeof owner.host === 'string' ? { pid: owner.pid, host: owner.host, started: String(owner.started) } : null;
  } catch {
    return null;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
