/** Absolute plus relative tolerance: |actual − expected| ≤ atol + rtol·|expected| per element. */
export interface Tolerance {
  atol: number;
  rtol: number;
}

/**
 * Why `actual` is not within `tol` of `expected`, naming the worst element's index and values, or
 * null when every element is (NaN never is).
 */
export function mismatch(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance, label = ''): string | null {
  if (actual.length !== expected.length) return `${label}: length ${actual.length}, expected ${expected.length}`;
  let worst = -1;
  let worstExcess = 0;
  let maxAbs = 0;
  for (let i = 0; i < actual.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    const allowed = tol.atol + tol.rtol * Math.abs(expected[i]);
    if (!(err <= allowed) && (worst < 0 || err - allowed > worstExcess || Number.isNaN(err))) {
      worst = i;
      worstExcess = err - allowed;
    }
    if (err > maxAbs) maxAbs = err;
  }
  if (worst < 0) return null;
  return `${label}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} (atol ${tol.atol}, rtol ${tol.rtol}; max abs error ${maxAbs})`;
}
