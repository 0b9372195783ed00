import { f16BitsToF32, f32ToF16Bits } from '../../src/io/half-precision.js';

/** float64 reference for matmul: a and b as stored (row-major), transposes as in the op. */
export function matmulReference(
  a: ArrayLike<number>,
  aShape: readonly number[],
  b: ArrayLike<number>,
  bShape: readonly number[],
  transA = false,
  transB = false,
): Float64Array {
  const [aRows, aCols] = aShape.slice(-2);
  const [bRows, bCols] = bShape.slice(-2);
  const m = transA ? aCols : aRows;
  const k = transA ? aRows : aCols;
  const n = transB ? bRows : bCols;
  const batchOf = (shape: readonly number[]) => shape.slice(0, -2).reduce((x, y) => x * y, 1);
  const batch = Math.max(batchOf(aShape), batchOf(bShape));
  const aStride = aShape.length > 2 ? m * k : 0;
  const bStride = bShape.length > 2 ? k * n : 0;
  const out = new Float64Array(batch * m * n);
  for (let z = 0; z < batch; z++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let q = 0; q < k; q++) {
          const av = a[z * aStride + (transA ? q * m + i : i * k + q)];
          const bv = b[z * bStride + (transB ? j * k + q : q * n + j)];
          sum += av * bv;
        }
        out[(z * m + i) * n + j] = sum;
      }
    }
  }
  return out;
}

/** The values an f16 tensor made from `data` actually holds. */
export function roundToF16(data: ArrayLike<number>): Float32Array {
  return Float32Array.from(data, (v) => f16BitsToF32(f32ToF16Bits(v)));
}
