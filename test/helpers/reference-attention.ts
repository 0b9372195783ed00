/**
 * float64 references for attention and RoPE, written the plain way (full score matrices), to
 * check the GPU kernels against. Layouts match the ops: q [B, T, Hq, D], k/v [B, S, Hkv, D].
 */

export interface AttentionShape {
  batch: number;
  queries: number;
  keys: number;
  qHeads: number;
  kvHeads: number;
  headDim: number;
}

export interface AttentionMask {
  kvLength?: number;
  keyStart?: ArrayLike<number>;
  scale?: number;
  /** Sliding window: keys with position − j < window only. */
  window?: number;
}

interface Resolved extends AttentionShape {
  kvLength: number;
  keyStart: ArrayLike<number>;
  scale: number;
  window: number;
}

function resolve(shape: AttentionShape, mask: AttentionMask): Resolved {
  return {
    ...shape,
    kvLength: mask.kvLength ?? shape.keys,
    keyStart: mask.keyStart ?? new Array<number>(shape.batch).fill(0),
    scale: mask.scale ?? 1 / Math.sqrt(shape.headDim),
    window: mask.window ?? Infinity,
  };
}

/** Calls fn(b, t, h, kvHead, qOffset, kOffset(j)) for every query row. */
function forEachRow(r: Resolved, fn: (b: number, t: number, h: number, qOff: number, keyOffset: (j: number) => number, visible: (j: number) => boolean) => void): void {
  const group = r.qHeads / r.kvHeads;
  for (let b = 0; b < r.batch; b++) {
    for (let t = 0; t < r.queries; t++) {
      const pos = r.kvLength - r.queries + t;
      for (let h = 0; h < r.qHeads; h++) {
        const g = Math.floor(h / group);
        const qOff = ((b * r.queries + t) * r.qHeads + h) * r.headDim;
        fn(b, t, h, qOff, (j) => ((b * r.keys + j) * r.kvHeads + g) * r.headDim, (j) => j >= r.keyStart[b] && j <= pos && pos - j < r.window);
      }
    }
  }
}

function dot(a: ArrayLike<number>, aOff: number, b: ArrayLike<number>, bOff: number, n: number): number {
  let s = 0;
  for (let d = 0; d < n; d++) s += a[aOff + d] * b[bOff + d];
  return s;
}

/** Softmax probabilities of one query row over keys 0..S-1 (0 where masked or when all are). */
function rowProbabilities(r: Resolved, q: ArrayLike<number>, k: ArrayLike<number>, qOff: number, keyOffset: (j: number) => number, visible: (j: number) => boolean): Float64Array {
  const probs = new Float64Array(r.keys);
  let max = -Infinity;
  for (let j = 0; j < r.keys; j++) {
    if (!visible(j)) continue;
    probs[j] = r.scale * dot(q, qOff, k, keyOffset(j), r.headDim);
    max = Math.max(max, probs[j]);
  }
  let sum = 0;
  for (let j = 0; j < r.keys; j++) {
    probs[j] = visible(j) ? Math.exp(probs[j] - max) : 0;
    sum += probs[j];
  }
  for (let j = 0; j < r.keys; j++) probs[j] = sum > 0 ? probs[j] / sum : 0;
  return probs;
}

export function attentionReference(shape: AttentionShape, q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, mask: AttentionMask = {}): Float64Array {
  const r = resolve(shape, mask);
  const out = new Float64Array(r.batch * r.queries * r.qHeads * r.headDim);
  forEachRow(r, (_b, _t, _h, qOff, keyOffset, visible) => {
    const probs = rowProbabilities(r, q, k, qOff, keyOffset, visible);
    for (let j = 0; j < r.keys; j++) {
      if (probs[j] === 0) continue;
      for (let d = 0; d < r.headDim; d++) out[qOff + d] += probs[j] * v[keyOffset(j) + d];
    }
  });
  return out;
}

/** Gradients of Σ gradOut∘attention(q, k, v) with respect to q, k and v. */
export function attentionBackwardReference(shape: AttentionShape, q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, gradOut: ArrayLike<number>, mask: AttentionMask = {}) {
  const r = resolve(shape, mask);
  const gradQ = new Float64Array(q.length);
  const gradK = new Float64Array(k.length);
  const gradV = new Float64Array(v.length);
  forEachRow(r, (_b, _t, _h, qOff, keyOffset, visible) => {
    const probs = rowProbabilities(r, q, k, qOff, keyOffset, visible);
    // dL/dP_j = dO·v_j; softmax backward: dS_j = P_j (dP_j − Σ_i P_i dP_i).
    const dP = new Float64Array(r.keys);
    let weighted = 0;
    for (let j = 0; j < r.keys; j++) {
      if (probs[j] === 0) continue;
      dP[j] = dot(gradOut, qOff, v, keyOffset(j), r.headDim);
      weighted += probs[j] * dP[j];
    }
    for (let j = 0; j < r.keys; j++) {
      if (probs[j] === 0) continue;
      const dS = probs[j] * (dP[j] - weighted) * r.scale;
      const kOff = keyOffset(j);
      for (let d = 0; d < r.headDim; d++) {
        gradV[kOff + d] += probs[j] * gradOut[qOff + d];
        gradQ[qOff + d] += dS * k[kOff + d];
        gradK[kOff + d] += dS * q[qOff + d];
      }
    }
  });
  return { gradQ, gradK, gradV };
}

/** Scaled RoPE: inverse frequencies (checked against transformers separately) and the cos/sin factor. */
export interface RopeFrequencies {
  invFreq: ArrayLike<number>;
  attentionFactor: number;
}

/**
 * Hugging Face Llama's rotate-half RoPE in float64 on the f32 angles HF computes:
 * inv_freq = 1 / theta^(2i/D) (or the given frequencies) and position · inv_freq are both rounded
 * to f32 first; cos and sin are multiplied by the attention factor.
 * x [B, T, H, D], positions [B, T]; direction −1 rotates back (the backward).
 */
export function ropeReference(x: ArrayLike<number>, shape: readonly number[], positions: ArrayLike<number>, theta: number, direction = 1, frequencies?: RopeFrequencies): Float64Array {
  const [batch, queries, heads, headDim] = shape;
  const half = headDim / 2;
  const invFreq = frequencies?.invFreq ?? Array.from({ length: half }, (_, i) => Math.fround(1 / Math.fround(theta ** Math.fround((2 * i) / headDim))));
  const factor = frequencies?.attentionFactor ?? 1;
  const out = new Float64Array(x.length);
  for (let bt = 0; bt < batch * queries; bt++) {
    for (let h = 0; h < heads; h++) {
      const off = (bt * heads + h) * headDim;
      for (let i = 0; i < half; i++) {
        const angle = Math.fround(Math.fround(positions[bt]) * invFreq[i]);
        const cos = factor * Math.cos(angle);
        const sin = factor * direction * Math.sin(angle);
        const a = x[off + i];
        const b = x[off + i + half];
        out[off + i] = a * cos - b * sin;
        out[off + i + half] = b * cos + a * sin;
      }
    }
  }
  return out;
}
