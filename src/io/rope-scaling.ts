/** How rotary frequencies are derived from rope_theta: transformers' `rope_type` and its parameters. */
export type RopeScaling = { readonly rope_type: 'default' };

interface RopeContext {
  source: string;
  headDim: number;
  maxPositions: number;
}

/**
 * RoPE settings as transformers 5 standardizes them: `rope_scaling` (the older spelling) wins over
 * `rope_parameters`, `type` is an alias of `rope_type`, rope_theta comes from the dict or the top
 * level (default 10000), and partial_rotary_factor from either place.
 */
export function parseRopeScaling(raw: Record<string, unknown>, context: RopeContext): { theta: number; scaling: RopeScaling } {
  const { source } = context;
  const given = (raw.rope_scaling ?? null) !== null ? raw.rope_scaling : raw.rope_parameters;
  const key = (raw.rope_scaling ?? null) !== null ? 'rope_scaling' : 'rope_parameters';
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
  if (type !== 'default') throw new Error(`${source}: "${key}" rope_type ${JSON.stringify(type)} is not supported; supported: default`);
  const extra = Object.keys(params).filter((k) => !['rope_type', 'type', 'rope_theta', 'partial_rotary_factor'].includes(k));
  if (extra.length) throw new Error(`${source}: "${key}" has parameters ${extra.map((k) => `${k}=${JSON.stringify(params[k])}`).join(', ')} that rope_type "default" does not use`);
  return { theta, scaling: { rope_type: 'default' } };
}
