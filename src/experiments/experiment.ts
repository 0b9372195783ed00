import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { writeFileAtomically } from '../io/atomic-file.js';
import { DEFAULT_CONFIG, GRPO_SETTINGS } from '../rl/grpo-config.js';
import { checkSettings } from '../io/settings-schema.js';

/** The commands an arm runs: GRPO (train.js) or supervised fine-tuning (sft.js). */
export const ARM_COMMANDS = ['train', 'sft'] as const;
export type ArmCommand = (typeof ARM_COMMANDS)[number];

/** Settings the runner sets itself: an arm's output folder is its own, and resuming is the runner's decision. */
const RUNNER_SETTINGS = ['outDir', 'resume', 'overwrite'];

/** One arm of an experiment: `experiments/<name>/arms/<arm>.json`, `{"command", "settings"}`. */
export interface Arm {
  readonly name: string;
  /** The arm's config file. */
  readonly file: string;
  readonly command: ArmCommand;
  /** The command's settings (its flags' camelCase names), as in a `--config` file. */
  readonly settings: Readonly<Record<string, unknown>>;
  /** The arm's output folder: `experiments/<name>/runs/<arm>/`. */
  readonly runDir: string;
  /** Seeds of one setting are one group: the arm's name without its `-seed<k>` suffix. */
  readonly group: string;
}

export interface Experiment {
  readonly name: string;
  readonly dir: string;
  readonly arms: readonly Arm[];
}

/** One start of an arm's command. */
export interface ArmAttempt {
  readonly started: string;
  readonly seconds: number;
  readonly exitCode: number | null;
  readonly resumed: boolean;
  /** The code it ran: the commit, with `-dirty` when tracked files outside experiments/ differed from it (absent in older records). */
  readonly commit?: string;
  /** The machine's 1-minute load average sampled while it ran, and its CPU count: wall times mean little without them. */
  readonly load?: { readonly mean: number; readonly max: number; readonly samples: number; readonly cpus: number };
}

/** What the runner records about an arm in `runs/<arm>/arm.json`. */
export interface ArmRecord {
  /** The last attempt's command line (script and flags, paths relative to the repository). */
  readonly argv: readonly string[];
  /** Every time the runner started the arm's command (a resumed arm has several). */
  readonly attempts: readonly ArmAttempt[];
  /** The command exited 0: the arm is done and is never run again. */
  readonly finished: boolean;
}

const SEED_SUFFIX = /-seed\d+$/;

/** Reads an experiment's arms, checking each config file before anything runs. */
export function readExperiment(experimentsDir: string, name: string): Experiment {
  const dir = join(experimentsDir, name);
  const armsDir = join(dir, 'arms');
  if (!existsSync(armsDir)) {
    const known = existsSync(experimentsDir) ? readdirSync(experimentsDir).filter((entry) => existsSync(join(experimentsDir, entry, 'arms'))) : [];
    throw new Error(`no experiment '${name}': ${armsDir} does not exist (experiments: ${known.join(', ') || 'none'})`);
  }
  const files = readdirSync(armsDir).filter((file) => file.endsWith('.json')).sort();
  if (!files.length) throw new Error(`${armsDir}: no arm config files (<arm>.json)`);
  return { name, dir, arms: files.map((file) => readArm(join(armsDir, file), join(dir, 'runs'))) };
}

function readArm(file: string, runsDir: string): Arm {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`${file}: cannot read the arm config (${(error as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`${file}: an arm config must be a JSON object {"command", "settings"}`);
  const { command, settings, ...rest } = parsed as Record<string, unknown>;
  if (Object.keys(rest).length) throw new Error(`${file}: unknown key${Object.keys(rest).length > 1 ? 's' : ''} ${Object.keys(rest).map((k) => `"${k}"`).join(', ')} (an arm has "command" and "settings")`);
  if (!(ARM_COMMANDS as readonly unknown[]).includes(command)) throw new Error(`${file}: "command" must be one of ${ARM_COMMANDS.join(', ')}, got ${JSON.stringify(command)}`);
  if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) throw new Error(`${file}: "settings" must be a JSON object of the command's settings`);
  const values = settings as Record<string, unknown>;
  const owned = Object.keys(values).filter((key) => RUNNER_SETTINGS.includes(key));
  if (owned.length) throw new Error(`${file}: "settings" must not set ${owned.join(', ')}: the runner chooses the arm's folder and whether it resumes`);
  // train.js's schema is importable; sft.js checks its own flags when it starts, in well under a second.
  if (command === 'train') checkSettings(GRPO_SETTINGS, { ...values }, { coerce: false, name: (key) => `${file}: "settings.${key}"` });
  if (command === 'sft') for (const key of ['steps', 'batch']) if (typeof values[key] !== 'number') throw new Error(`${file}: an sft arm states "settings.${key}" (its compute budget is reported from it)`);
  const name = basename(file, '.json');
  return { name, file, command: command as ArmCommand, settings: values, runDir: join(runsDir, name), group: name.replace(SEED_SUFFIX, '') };
}

/** The arms named (in the order named; all of them, in file order, when none is); an unknown name throws, listing the arms. */
export function selectArms(experiment: Experiment, names?: readonly string[]): Arm[] {
  if (!names) return [...experiment.arms];
  const unknown = names.filter((name) => !experiment.arms.some((arm) => arm.name === name));
  if (unknown.length) throw new Error(`--arm ${unknown.join(', ')}: not an arm of ${experiment.name} (${experiment.arms.map((arm) => arm.name).join(', ')})`);
  return [...new Set(names)].map((name) => experiment.arms.find((arm) => arm.name === name)!);
}

/** A train arm's setting, or train.js's default for it. */
export function trainSetting<K extends keyof typeof DEFAULT_CONFIG>(arm: Arm, key: K): (typeof DEFAULT_CONFIG)[K] {
  return (arm.settings[key] ?? DEFAULT_CONFIG[key]) as (typeof DEFAULT_CONFIG)[K];
}

export function armRecordPath(arm: Arm): string {
  return join(arm.runDir, 'arm.json');
}

export function readArmRecord(arm: Arm): ArmRecord | null {
  const path = armRecordPath(arm);
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as ArmRecord;
  } catch (error) {
    throw new Error(`${path}: cannot read the arm's record (${(error as Error).message})`);
  }
}

export function writeArmRecord(arm: Arm, record: ArmRecord): void {
  writeFileAtomically(armRecordPath(arm), JSON.stringify(record, null, 2) + '\n');
}
