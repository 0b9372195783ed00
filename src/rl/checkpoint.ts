import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { syncDirectory, writeFileAtomically } from '../io/atomic-file.js';
import type { AdamWState } from '../optim/adamw.js';
import { SafetensorsFile } from '../io/safetensors.js';
import { writeSafetensors } from '../io/safetensors-writer.js';

/** What besides the adapter a run needs to continue exactly where it stopped. */
export interface TrainerState {
  /** Optimizer steps taken. */
  step: number;
  /** The run's seed: data order, sampling and dropout are functions of (seed, step). */
  seed: number;
  /** The LoRA dropout stream counter (advances with every training forward). */
  dropoutStream: number;
  /** The matmul kernel each shape class ran (autotuned at the run's start). */
  matmulVariants: Record<string, string>;
  /** The config the run was started with (a resumed run must match it). */
  config: Record<string, unknown>;
  /** The sha256 of each data and reward file the run read (a resumed run must read the same). */
  inputs?: Record<string, string>;
  /** Evaluation results so far, kept for the final plot. */
  history: Record<string, number>[];
}

const PREFIX = 'checkpoint-';
const OPTIMIZER_FILE = 'optimizer.safetensors';
const STATE_FILE = 'trainer_state.json';

/**
 * Writes checkpoint-<step>/ atomically: everything goes to a hidden temporary folder that is
 * renamed into place at the end, so a killed process leaves either the old checkpoints or a
 * complete new one, never a half-written one.
 */
export async function saveCheckpoint(outDir: string, state: TrainerState, optimizer: AdamWState, writeAdapter: (dir: string) => Promise<void>): Promise<string> {
  mkdirSync(outDir, { recursive: true });
  const final = join(outDir, `${PREFIX}${state.step}`);
  const temporary = join(outDir, `.${PREFIX}${state.step}.${process.pid}.tmp`);
  rmSync(temporary, { recursive: true, force: true });
  mkdirSync(temporary);
  await writeAdapter(temporary);
  const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  optimizer.m.forEach((m, i) => {
    tensors[`m.${i}`] = { dtype: 'F32', shape: [m.length], data: m };
    tensors[`v.${i}`] = { dtype: 'F32', shape: [optimizer.v[i].length], data: optimizer.v[i] };
  });
  writeSafetensors(join(temporary, OPTIMIZER_FILE), tensors, { steps: JSON.stringify(optimizer.steps) });
  writeFileAtomically(join(temporary, STATE_FILE), JSON.stringify(state, null, 1) + '\n');
  rmSync(final, { recursive: true, force: true });
  renameSync(temporary, final);
  syncDirectory(outDir);
  return final;
}

/** The newest complete checkpoint folder in outDir, or null. */
export function latestCheckpoint(outDir: string): string | null {
  if (!existsSync(outDir)) return null;
  const steps = readdirSync(outDir)
    .filter((name) => name.startsWith(PREFIX) && /^\d+$/.test(name.slice(PREFIX.length)))
    .map((name) => Number(name.slice(PREFIX.length)))
    .filter((step) => existsSync(join(outDir, `${PREFIX}${step}`, STATE_FILE)));
  return steps.length ? join(outDir, `${PREFIX}${Math.max(...steps)}`) : null;
}

export function loadCheckpoint(dir: string): { state: TrainerState; optimizer: AdamWState } {
  const state = JSON.parse(readFileSync(join(dir, STATE_FILE), 'utf8')) as TrainerState;
  const file = SafetensorsFile.open(join(dir, OPTIMIZER_FILE));
  try {
    const steps = JSON.parse(file.metadata?.steps ?? 'null') as number[] | null;
    if (!Array.isArray(steps)) throw new Error(`${dir}/${OPTIMIZER_FILE}: missing the optimizer step counts`);
    return {
      state,
      optimizer: { steps, m: steps.map((_, i) => file.readFloat32(`m.${i}`)), v: steps.map((_, i) => file.readFloat32(`v.${i}`)) },
    };
  } finally {
    file.close();
  }
}
