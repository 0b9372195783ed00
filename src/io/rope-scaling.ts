/**
 * How rotary frequencies are derived from rope_theta: transformers' `rope_type` and the parameters
 * it reads, with its defaults filled in.
 */
export type RopeScaling =
  | { readonly rope_type: 'default' }
  | { readonly rope_type: 'linear'; readonly factor: number }
  /** NTK-aware scaling recomputed from the longest sequence; the default frequencies up to max_position_embeddings. */
  | { readonly rope_type: 'dynamic'; readonly factor: number }
  | {
      readonly rope_type: 'llama3';
      readonly factor: number;
      readonly low_freq_factor: number;
      readonly high_freq_factor: number;
      readonly original_max_position_embeddings: number;
    }
  | {
      readonly rope_type: 'yarn';
      readonly factor: number;
      readonly original_max_position_embeddings: number;
      readonly beta_fast: number;
      readonly beta_slow: number;
      readonly truncate: boolean;
      /** Multiplies cos and sin (transformers' attention_scaling). */
      readonly attention_factor: number;
    };

export const SUPPORTED_ROPE_TYPES = ['default', 'linear', 'dynamic', 'llama3', 'yarn'] as const;

interface RopeContext {
  source: string;
  maxPositions: number;
}

/** The parameters each type reads; anything else in the dict is refused. */
const ROPE_PARAMETERS: Record<(typeof SUPPORTED_ROPE_TYPES)[number], readonly string[]> = {
  default: [],
  linear: ['factor'],
  dynamic: ['factor'],
  llama3: ['factor', 'low_freq_factor', 'high_freq_factor', 'original_max_position_embeddings'],
  yarn: ['factor', 'original_max_position_embeddings', 'beta_fast', 'beta_slow', 'mscale', 'mscale_all_dim', 'attention_factor', 'truncate'],
};

/**
 * RoPE settings as transformers 5 standardizes them: `rope_scaling` (the older spelling) wins over
 * `rope_parameters`, `type` is an alias of `rope_type`, rope_theta comes from the dict or the top
 * level (default 10000), partial_rotary_factor from either place, and a top-level
 * original_max_position_embeddings overrides the dict's.
 */
export function parseRopeScaling(raw: Record<string, unknown>, context: RopeContext): { theta: number; scaling: RopeScaling } {
  const { source } = context;
  const key = (raw.rope_scaling ?? null) !== null ? 'rope_scaling' : 'rope_parameters';
  const given = raw[key];
  if (given !== undefined && given !== null && (typeof given !== 'object' || Array.isArray(given))) {
    throw new Error(`${source}: "${key}" must be an object or null, got ${JSON.stringify(given)}`);
  }
  const params = (given ?? {}) as Record<string, unknown>;
  const theta = params.rope_theta ?? raw.rope_theta ?? 10000;
  if (typeof theta !== 'number' || !(theta > 0)) throw new Error(`${source}: rope_theta must be a positive number, got ${JSON.stringify(theta)}`);
  const partial = params.partial_rotary_factor ?? raw.partial_rotary_factor ?? 1;
  if (partial !== 1) {
    throw new Error(`${source}: partial_rotary_factor ${JSON.stringify(partial)} is not supported (RoPE rotates the whole head, 1.0)`);
  }
  const type = params.rope_type ?? params.type ?? 'default';
  if (!(SUPPORTED_ROPE_TYPES as readonly unknown[]).includes(type)) {
    throw new Error(`${source}: "${key}" rope_type ${JSON.stringify(type)} is not supported; supported: ${SUPPORTED_ROPE_TYPES.join(', ')}`);
  }
  const ropeType = type as (typeof SUPPORTED_ROPE_TYPES)[number];
  const extra = Object.keys(params).filter((k) => !['rope_type', 'type', 'rope_theta', 'partial_rotary_factor', ...ROPE_PARAMETERS[ropeType]].includes(k));
  if (extra.length) {
    throw new Error(`${source}: "${key}" has parameters ${extra.map((k) => `${k}=${JSON.stringify(params[k])}`).join(', ')} that rope_type "${ropeType}" does not use`);
  }
  const number = (name: string, fallback?: number | null): number => {
    const value = params[name] ?? fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new Error(`${source}: "${key}" ${name} must be a positive number for rope_type "${ropeType}", got ${JSON.stringify(params[name] ?? null)}`);
    }
    return value;
  };
  const originalMax = (): number => {
    const value = raw.original_max_position_embeddings ?? params.original_max_position_embeddings ?? context.maxPositions;
    if (!Number.isSafeInteger(value) || (value as number) <= 0) {
      throw new Error(`${source}: original_max_position_embeddings must be a positive integer, got ${JSON.stringify(value)}`);
    }
    return value as number;
  };

  switch (ropeType) {
    case 'default':
      return { theta, scaling: { rope_type: 'default' } };
    case 'linear':
    case 'dynamic':
      return { theta, scaling: { rope_type: ropeType, factor: number('factor') } };
    case 'llama3': {
      const scaling = {
        rope_type: ropeType,
        factor: number('factor'),
        low_freq_factor: number('low_freq_factor'),
        high_freq_factor: number('high_freq_factor'),
        original_max_position_embeddings: originalMax(),
      };
      if (scaling.high_freq_factor <= scaling.low_freq_factor) {
        throw new Error(`${source}: "${key}" high_freq_factor (${scaling.high_freq_factor}) must exceed low_freq_factor (${scaling.low_freq_factor})`);
      }
      return { theta, scaling };
    }
    case 'yarn': {
      const original = originalMax();
      const factor = number('factor', context.maxPositions / original);
      // transformers reads these with `or`, so 0 and null mean the default too.
      const betaFast = (params.beta_fast as number | undefined) || 32;
      const betaSlow = (params.beta_slow as number | undefined) || 1;
      const truncate = params.truncate ?? true;
      if (typeof truncate !== 'boolean') throw new Error(`${source}: "${key}" truncate must be true or false, got ${JSON.stringify(truncate)}`);
      const mscale = (scale: number, m = 1) => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
      const m = params.mscale as number | undefined;
      const mAll = params.mscale_all_dim as number | undefined;
      const attentionFactor = (params.attention_factor as number | null | undefined) ?? (m && mAll ? mscale(factor, m) / mscale(factor, mAll) : mscale(factor));
      return {
        theta,
        scaling: { rope_type: ropeType, factor, original_max_position_embeddings: original, beta_fast: betaFast, beta_slow: betaSlow, truncate, attention_factor: attentionFactor },
      };
    }
  }
}

const f32 = Math.fround;

/**
 * transformers' inverse frequencies [D/2] for a rope type, with every float32 tensor operation
 * rounded to float32 as torch rounds it (python scalars enter those operations as float32), and
 * the factor that multiplies cos and sin. Rounding matters: at position p an error ε in a
 * frequency turns the angle by p·ε.
 */
export function ropeInverseFrequencies(headDim: number, theta: number, scaling: RopeScaling): { invFreq: Float32Array; attentionFactor: number } {
  const half = headDim / 2;
  // base ** (arange(0, D, 2) / D) in float32.
  const powers = Array.from({ length: half }, (_, i) => f32(theta ** f32((2 * i) / headDim)));
  const base = Float32Array.from(powers, (p) => 1 / p);
  switch (scaling.rope_type) {
    case 'default':
    case 'dynamic':
      return { invFreq: base, attentionFactor: 1 };
    case 'linear':
      return { invFreq: base.map((v) => v / f32(scaling.factor)), attentionFactor: 1 };
    case 'llama3': {
      const { factor, low_freq_factor: low, high_freq_factor: high, original_max_position_embeddings: context } = scaling;
      const lowWavelen = f32(context / low);
      const highWavelen = f32(context / high);
      // A python scalar divided by a tensor is reciprocal(tensor) · scalar in torch.
      const invFreq = base.map((inv) => {
        const wavelen = f32(f32(1 / inv) * f32(2 * Math.PI));
        const scaled = wavelen > lowWavelen ? f32(inv / f32(factor)) : inv;
        if (wavelen < highWavelen || wavelen > lowWavelen) return scaled;
        const smooth = f32(f32(f32(f32(1 / wavelen) * f32(context)) - f32(low)) / f32(high - low));
        return f32(f32(f32(f32(1 - smooth) * scaled) / f32(factor)) + f32(smooth * scaled));
      });
      return { invFreq, attentionFactor: 1 };
    }
    case 'yarn': {
      const { factor, original_max_position_embeddings: original, beta_fast: betaFast, beta_slow: betaSlow, truncate } = scaling;
      const correctionDim = (rotations: number) => (headDim * Math.log(original / (rotations * 2 * Math.PI))) / (2 * Math.log(theta));
      let low = correctionDim(betaFast);
      let high = correctionDim(betaSlow);
      if (truncate) {
        low = Math.floor(low);
        high = Math.ceil(high);
      }
      low = Math.max(low, 0);
      high = Math.min(high, headDim - 1);
      if (low === high) high += 0.001;
      const invFreq = Float32Array.from(powers, (power, i) => {
        const ramp = Math.min(Math.max(f32(f32(i - f32(low)) / f32(high - low)), 0), 1);
        const extrapolationFactor = f32(1 - ramp);
        const extrapolation = f32(1 / power);
        const interpolation = f32(1 / f32(f32(factor) * power));
        return f32(f32(interpolation * f32(1 - extrapolationFactor)) + f32(extrapolation * extrapolationFactor));
      });
      return { invFreq, attentionFactor: scaling.attention_factor };
    }
  }
}

/** One line for people: the rope type and its parameters. */
export function describeRope(theta: number, scaling: RopeScaling): string {
  const { rope_type: type, ...rest } = scaling;
  const parameters = Object.entries(rest).map(([k, v]) => `${k} ${typeof v === 'number' ? Number(v.toPrecision(6)) : String(v)}`);
  return [`${type}, theta ${theta}`, ...parameters].join(', ');
}
