import { mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** What a run leaves in its output folder; anything else there (the user's own files) is never touched. */
const RUN_ENTRY = /^(metrics\.jsonl|completions\.jsonl|curves\.svg|checkpoint-\d+|adapter|model)$/;
/** Temporary files and folders of writes a killed process left behind (checkpoints, log rewrites). */
const LEFTOVER = /^\.(checkpoint-\d+|metrics\.jsonl|completions\.jsonl)\.\d+(\.\d+)?\.tmp$|^\.replaced-\d+$/;
/** Where --overwrite gathers the old run before deleting it. */
const REPLACED_PREFIX = '.replaced-';

export interface RunFolderOptions {
  /** The run continues the one in the folder. */
  readonly resume: boolean;
  /** Replace whatever run the folder holds, as a whole. */
  readonly overwrite: boolean;
  /** How the command names the folder and its flags in messages, e.g. `--out-dir`. */
  readonly flag: string;
}

/**
 * Prepares a run's output folder so that two runs never mix there: a folder that already holds a
 * run is refused unless the new run resumes it or replaces it as a whole (--overwrite). What
 * killed writes left behind is removed first.
 */
export function prepareRunFolder(outDir: string, options: RunFolderOptions): void {
  mkdirSync(outDir, { recursive: true });
  for (const name of readdirSync(outDir)) if (LEFTOVER.test(name)) rmSync(join(outDir, name), { recursive: true, force: true });
  const previous = readdirSync(outDir).filter((name) => RUN_ENTRY.test(name)).sort();
  if (!previous.length || options.resume) return;
  if (!options.overwrite) {
    throw new Error(
      `${options.flag} ${outDir} already holds a run (${previous.join(', ')}). ` +
        `Continue it with --resume, replace it with --overwrite, or choose another ${options.flag}.`,
    );
  }
  // Gather the old run into one hidden folder first (renames), so the new run never starts next to half of it.
  const replaced = join(outDir, `${REPLACED_PREFIX}${process.pid}`);
  mkdirSync(replaced, { recursive: true });
  for (const name of previous) renameSync(join(outDir, name), join(replaced, name));
  rmSync(replaced, { recursive: true, force: true });
}
