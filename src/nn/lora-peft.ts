import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomically } from '../io/atomic-file.js';
import { SafetensorsFile } from '../io/safetensors.js';
import { writeSafetensors, type TensorsToWrite } from '../io/safetensors-writer.js';
import type { LoraConfig } from './lora-config.js';

/**
 * Hugging Face PEFT's on-disk LoRA adapter: a directory with adapter_config.json and
 * adapter_model.safetensors, the layout `PeftModel.from_pretrained` reads and
 * `save_pretrained` writes (checked against peft 0.21).
 */

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';

/** The adapter's settings as read from a PEFT config (dropout seeds are ours, not PEFT's). */
export type PeftLoraSettings = Omit<LoraConfig, 'seed'>;

/**
 * PEFT names a module's matrices after the module inside PeftModel → LoraModel → the causal LM,
 * with the adapter's own name ("default") removed: base_model.model.<HF module>.lora_A.weight.
 */
export function peftTensorName(moduleName: string, matrix: 'lora_A' | 'lora_B'): string {
  return `base_model.model.${moduleName}.${matrix}.weight`;
}

/** adapter_config.json for our settings, with PEFT's defaults for every feature we do not use. */
export function peftAdapterConfig(settings: PeftLoraSettings, baseModelNameOrPath: string): Record<string, unknown> {
  const targets = settings.targetModules;
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: baseModelNameOrPath,
    revision: null,
    inference_mode: true,
    r: settings.rank,
    lora_alpha: settings.alpha,
    lora_dropout: settings.dropout,
    // PEFT keeps a list of names as a set and writes it sorted; a string is a regular expression.
    target_modules: typeof targets === 'string' ? targets : [...new Set(targets)].sort(),
    exclude_modules: null,
    fan_in_fan_out: false,
    bias: 'none',
    use_rslora: settings.useRslora,
    modules_to_save: null,
    init_lora_weights: true,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
    use_dora: false,
    lora_bias: false,
  };
}

/**
 * PEFT features that change what the adapter computes or which weights it holds. A config that
 * turns any of them on is refused rather than half-applied.
 */
const UNSUPPORTED_FEATURES = [
  'use_dora', 'fan_in_fan_out', 'lora_bias', 'modules_to_save', 'rank_pattern', 'alpha_pattern',
  'layers_to_transform', 'layers_pattern', 'exclude_modules', 'layer_replication', 'target_parameters',
  'trainable_token_indices', 'use_qalora', 'alora_invocation_tokens',
] as const;

function isUnset(v: unknown): boolean {
  if (v === undefined || v === null || v === false) return true;
  if (Array.isArray(v)) return v.length === 0;
  return typeof v === 'object' && Object.keys(v).length === 0;
}

/** Validates a parsed adapter_config.json; `source` names the file in errors. */
export function parsePeftAdapterConfig(json: unknown, source: string): PeftLoraSettings {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`${source}: adapter config is not a JSON object`);
  const raw = json as Record<string, unknown>;
  const fail = (message: string): never => {
    throw new Error(`${source}: ${message}`);
  };
  if (raw.peft_type !== 'LORA') fail(`peft_type is ${JSON.stringify(raw.peft_type ?? null)}, only "LORA" adapters are supported`);
  // Without a task type PeftModel still wraps the model the same way, so the tensor names agree.
  if (raw.task_type !== undefined && raw.task_type !== null && raw.task_type !== 'CAUSAL_LM') {
    fail(`task_type is ${JSON.stringify(raw.task_type)}, only "CAUSAL_LM" adapters are supported`);
  }
  const rank = raw.r;
  if (!Number.isSafeInteger(rank) || (rank as number) <= 0) fail(`"r" must be a positive integer, got ${JSON.stringify(rank ?? null)}`);
  const alpha = raw.lora_alpha;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha)) fail(`"lora_alpha" must be a finite number, got ${JSON.stringify(alpha ?? null)}`);
  const dropout = raw.lora_dropout ?? 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) fail(`"lora_dropout" must be a number in [0, 1), got ${JSON.stringify(dropout)}`);
  const useRslora = raw.use_rslora ?? false;
  if (typeof useRslora !== 'boolean') fail(`"use_rslora" must be a boolean, got ${JSON.stringify(useRslora)}`);
  const bias = raw.bias ?? 'none';
  if (bias !== 'none') fail(`"bias" is ${JSON.stringify(bias)}; only "none" is supported (the base biases stay frozen)`);
  for (const key of UNSUPPORTED_FEATURES) {
    if (!isUnset(raw[key])) fail(`"${key}" is ${JSON.stringify(raw[key])}; this PEFT feature is not supported`);
  }
  const targets = raw.target_modules;
  const validTargets =
    (typeof targets === 'string' && targets.length > 0) ||
    (Array.isArray(targets) && targets.length > 0 && targets.every((t) => typeof t === 'string' && t.length > 0));
  if (!validTargets) fail(`"target_modules" must be a non-empty list of module names or a regular expression, got ${JSON.stringify(targets ?? null)}`);
  return {
    rank: rank as number,
    alpha: alpha as number,
    dropout: dropout as number,
    targetModules: targets as string | string[],
    useRslora: useRslora as boolean,
  };
}

/**
 * Writes an adapter directory. Each file is replaced atomically; the weights go first, so a
 * directory whose config is present always has weights that were complete when it was written.
 */
export function writePeftAdapter(dir: string, config: Record<string, unknown>, tensors: TensorsToWrite): void {
  mkdirSync(dir, { recursive: true });
  writeSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), tensors, { format: 'pt' });
  writeFileAtomically(join(dir, ADAPTER_CONFIG_FILE), JSON.stringify(config, null, 2) + '\n');
}

/** Opens an adapter directory: its validated settings and its weights file (the caller closes it). */
export function openPeftAdapter(dir: string): { settings: PeftLoraSettings; weights: SafetensorsFile } {
  const configPath = join(dir, ADAPTER_CONFIG_FILE);
  if (!existsSync(configPath)) throw new Error(`${dir}: no ${ADAPTER_CONFIG_FILE}, so this is not a PEFT adapter directory`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(configPath, 'utf8'));
  } catch (error) {
    throw new Error(`${configPath}: invalid JSON (${(error as Error).message})`);
  }
  const settings = parsePeftAdapterConfig(json, configPath);
  const weightsPath = join(dir, ADAPTER_WEIGHTS_FILE);
  if (!existsSync(weightsPath)) {
    const pickled = existsSync(join(dir, 'adapter_model.bin'));
    throw new Error(`${dir}: no ${ADAPTER_WEIGHTS_FILE}${pickled ? ' (adapter_model.bin, a pickle, is not read: re-save the adapter with safe_serialization)' : ''}`);
  }
  return { settings, weights: SafetensorsFile.open(weightsPath) };
}
