import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CONFIG, type GrpoConfig } from '../../src/rl/grpo-config.js';

/** A GRPO run of the tiny model on its arithmetic task, LoRA r 4, into a fresh folder; `settings` override. */
export function tinyGrpoConfig(settings: Partial<GrpoConfig>): GrpoConfig {
  return { ...DEFAULT_CONFIG, model: 'tiny', task: 'tiny-arithmetic', loraRank: 4, outDir: mkdtempSync(join(tmpdir(), 'tiny-grpo-')), ...settings };
}
