import { expect } from 'vitest';
import { mismatch, type Tolerance } from './compare.js';

export type { Tolerance };

/** Fails with the worst element's index and values, so a mismatch says where and by how much. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance, label = ''): void {
  expect(actual.length, `${label} length`).toBe(expected.length);
  const problem = mismatch(actual, expected, tol, label);
  if (problem) expect.fail(problem);
}
