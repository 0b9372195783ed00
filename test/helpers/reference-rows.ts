/** float64 references for row-wise ops over the last axis of row-major data. */

export function rowsOf(data: ArrayLike<number>, cols: number): number[][] {
  const rows: number[][] = [];
  for (let start = 0; start < data.length; start += cols) rows.push(Array.from({ length: cols }, (_, j) => data[start + j]));
  return rows;
}

export function numelOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Σ|x| of each row: the scale that f32 summation error is proportional to. */
export function rowAbsSums(data: ArrayLike<number>, cols: number): number[] {
  return rowsOf(data, cols).map((row) => row.reduce((s, v) => s + Math.abs(v), 0));
}

export function softmaxRef(row: readonly number[]): number[] {
  const m = Math.max(...row);
  const e = row.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

export function logSoftmaxRef(row: readonly number[]): number[] {
  const m = Math.max(...row);
  const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
  return row.map((v) => v - lse);
}

/** HF Llama RMSNorm in float64: x / sqrt(mean(x²) + eps) ⊙ weight. */
export function rmsnormRef(row: readonly number[], weight: ArrayLike<number> | null, eps: number): number[] {
  const ms = row.reduce((s, v) => s + v * v, 0) / row.length;
  const r = 1 / Math.sqrt(ms + eps);
  return row.map((v, j) => v * r * (weight ? weight[j] : 1));
}

/** A shuffled evenly spaced row: distinct values whose gaps exceed finite-difference steps. */
export function distinctValues(n: number, seed: number, spacing = 0.05): Float32Array {
  const values = Array.from({ length: n }, (_, i) => (i - n / 2) * spacing);
  let s = seed;
  for (let i = n - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const j = s % (i + 1);
    [values[i], values[j]] = [values[j], values[i]];
  }
  return Float32Array.from(values);
}
