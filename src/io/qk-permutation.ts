/**
 * Undoes the row permutation llama.cpp's converter applies to Llama q_proj/k_proj weights.
 *
 * Hugging Face's RoPE rotates the two halves of each head (rotate_half: dimension d pairs with
 * d + headDim/2); llama.cpp's rotates adjacent pairs (2d with 2d+1). Its converter therefore
 * interleaves each head's rows: GGUF row 2d + t of a head holds HF row t·headDim/2 + d.
 * `values` is row-major [heads·headDim, columns] (a weight) or [heads·headDim] (a bias).
 */
export function unpermuteQK(values: Float32Array, heads: number, rows: number, what: string): Float32Array {
  const headDim = rows / heads;
  if (!Number.isInteger(headDim) || headDim % 2 !== 0 || values.length % rows !== 0) {
    throw new Error(`${what}: cannot undo the Q/K permutation of ${rows} rows over ${heads} heads`);
  }
  const columns = values.length / rows;
  const halfDim = headDim / 2;
  const out = new Float32Array(values.length);
  for (let h = 0; h < heads; h++) {
    for (let t = 0; t < 2; t++) {
      for (let d = 0; d < halfDim; d++) {
        const hfRow = h * headDim + t * halfDim + d;
        const ggufRow = h * headDim + 2 * d + t;
        out.set(values.subarray(ggufRow * columns, (ggufRow + 1) * columns), hfRow * columns);
      }
    }
  }
  return out;
}
