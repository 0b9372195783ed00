// A LoRA adapter's settings, shared by the adapter layers (lora.ts) and the PEFT files (lora-peft.ts).

/** PEFT's names for the projections of a Llama-family decoder: every Linear except the LM head. */
export const DEFAULT_LORA_TARGETS: readonly string[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

export interface LoraOptions {
  rank: number;
  alpha: number;
  /** Probability of zeroing each element of the adapter's input during training (PEFT's lora_dropout). */
  dropout?: number;
  /**
   * PEFT's target_modules: module-name suffixes (`q_proj` matches `model.layers.3.self_attn.q_proj`),
   * or one regular expression that a whole module name must match, or "all-linear".
   */
  targetModules?: readonly string[] | string;
  /** Rank-stabilised LoRA: scale alpha/√r instead of alpha/r. */
  useRslora?: boolean;
  /** Seeds A's initialisation and the dropout masks (u32). */
  seed?: number;
}

export type LoraConfig = Required<LoraOptions>;

export function loraScaling(config: Pick<LoraConfig, 'rank' | 'alpha' | 'useRslora'>): number {
  return config.useRslora ? config.alpha / Math.sqrt(config.rank) : config.alpha / config.rank;
}

/** Fills in PEFT's defaults and checks every field. */
export function resolveLoraConfig(options: LoraOptions): LoraConfig {
  const config: LoraConfig = {
    rank: options.rank,
    alpha: options.alpha,
    dropout: options.dropout ?? 0,
    targetModules: options.targetModules ?? DEFAULT_LORA_TARGETS,
    useRslora: options.useRslora ?? false,
    seed: options.seed ?? 0,
  };
  if (!Number.isSafeInteger(config.rank) || config.rank <= 0) throw new Error(`LoRA: rank must be a positive integer, got ${config.rank}`);
  if (!Number.isFinite(config.alpha)) throw new Error(`LoRA: alpha must be a finite number, got ${config.alpha}`);
  if (!(config.dropout >= 0 && config.dropout < 1)) throw new Error(`LoRA: dropout must be in [0, 1), got ${config.dropout}`);
  if (!Number.isInteger(config.seed) || config.seed < 0 || config.seed > 0xffffffff) throw new Error(`LoRA: seed must be a u32, got ${config.seed}`);
  return config;
}
