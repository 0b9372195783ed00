import { describe, expect, it } from 'vitest';
import {
  bf16ArrayToF32,
  f16ArrayToF32,
  f32ArrayToBf16,
  f32ArrayToF16,
  f32ToF16Bits,
} from '../src/io/half-precision.js';
import { runPython } from './python/run-python.js';

/** Values that exercise every rounding path: ties, subnormals, overflow, signed zero, NaN. */
function trickyFloats(): Float32Array {
  const values: number[] = [0, -0, 1, -1, 65504, 65519.99, 65520, -65520, 1e-8, 2 ** -24, 2 ** -25, 3 * 2 ** -26];
  values.push(2 ** -14, 2 ** -14 - 2 ** -25, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 3.4e38);
  values.push(Infinity, -Infinity, NaN, Math.PI, -Math.E);
  const bits = new Uint32Array(1);
  const asFloat = new Float32Array(bits.buffer);
  let state = 12345;
  for (let i = 0; i < 20000; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    // Random bit patterns over exponents near the f16 range, plus a spread of ordinary values.
    bits[0] = (state & 0x807fffff) | ((((state >>> 23) % 48) + 97) << 23);
    values.push(asFloat[0], (state / 2 ** 32 - 0.5) * 2 ** ((i % 40) - 20));
  }
  return Float32Array.from(values);
}

describe('half precision conversions', () => {
  const values = trickyFloats();
  const reference = JSON.parse(
    runPython('half_reference.py', [], Buffer.from(values.buffer).toString('base64')),
  ) as { f16: number[]; bf16: number[] };

  it('f32 → f16 bits match numpy (round to nearest even)', () => {
    const ours = f32ArrayToF16(values);
    const mismatches = [...ours].flatMap((bits, i) => (bits === reference.f16[i] ? [] : [[values[i], bits, reference.f16[i]]]));
    expect(mismatches.slice(0, 5)).toEqual([]);
  });

  it('f32 → bf16 bits match torch (round to nearest even)', () => {
    const ours = f32ArrayToBf16(values);
    // NaN payloads carry no meaning (torch returns 0xffff, we return a quiet NaN): compare NaN-ness.
    const isNaNBits = (bits: number) => (bits & 0x7f80) === 0x7f80 && (bits & 0x7f) !== 0;
    const mismatches = [...ours].flatMap((bits, i) =>
      bits === reference.bf16[i] || (isNaNBits(bits) && isNaNBits(reference.bf16[i])) ? [] : [[values[i], bits, reference.bf16[i]]],
    );
    expect(mismatches.slice(0, 5)).toEqual([]);
  });

  it('f16 → f32 is exact for every bit pattern and round-trips through f32 → f16', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const widened = f16ArrayToF32(all);
    for (let i = 0; i < 65536; i++) {
      if (Number.isNaN(widened[i])) continue;
      expect(f32ToF16Bits(widened[i])).toBe(i);
    }
    expect(widened[0x3c00]).toBe(1);
    expect(widened[0x0001]).toBe(2 ** -24);
    expect(widened[0xfbff]).toBe(-65504);
  });

  it('bf16 → f32 is the top half of the f32 bits', () => {
    expect([...bf16ArrayToF32(Uint16Array.of(0x3f80, 0xc000, 0x7f80, 0x0001))]).toEqual([1, -2, Infinity, 2 ** -133]);
  });
});
