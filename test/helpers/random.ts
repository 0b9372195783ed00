// Seeded generators so every test input is reproducible.
import { seededRandom } from '../../src/data/random.js';

/** The project's seeded generator (mulberry32). */
export const rng = seededRandom;

/** Standard normal samples, rounded to f32 so the host reference sees exactly the GPU's inputs. */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  const u = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = scale * Math.sqrt(-2 * Math.log(u() + 1e-12)) * Math.cos(2 * Math.PI * u());
  }
  return out;
}

export function uniform(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const u = rng(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * u());
}
