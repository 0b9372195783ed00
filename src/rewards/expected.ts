import type { ExampleRow } from './types.js';

/** What a completion is compared with: a field of the example row, or a fixed value from the config. */
export type ExpectedValue = { readonly field: string } | { readonly value: unknown };

export function resolveExpected(expected: ExpectedValue, example: ExampleRow): unknown {
  if ('value' in expected) return expected.value;
  if (!(expected.field in example)) throw new Error(`the example has no field '${expected.field}'`);
  return example[expected.field];
}
