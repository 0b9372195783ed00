import { expect } from 'vitest';

export interface Tolerance {
  atol: number;
  rtol: number;
}

/** Fails with the worst element's index and values, so a mismatch says where and by how much. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance, label = ''): void {
  expect(actual.length, `${label} length`).toBe(expected.length);
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
  if (worst >= 0) {
    expect.fail(
      `${label}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} ` +
        `(atol ${tol.atol}, rtol ${tol.rtol}; max abs error ${maxAbs})`,
    );
  }
}
