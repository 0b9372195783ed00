import { describe, expect, it } from 'vitest';
import { runKernelChecks } from './device/kernel-checks.js';
import { mismatch } from './helpers/compare.js';
import { useGpu } from './helpers/gpu.js';

const gpu = useGpu();

describe('the device kernel self-check', () => {
  it('finds every kernel within tolerance of its float64 reference here, and exercises every shader', async () => {
    const lines: string[] = [];
    const report = await runKernelChecks(gpu(), (line) => lines.push(line));
    expect(report.failed, lines.join('\n')).toEqual([]);
    expect(report.unexercisedShaders).toEqual([]);
    expect(report.passed).toBeGreaterThan(100);
  });

  it('reports the worst element, lengths that differ and NaN', () => {
    expect(mismatch([1, 2.5, 3], [1, 2, 3], { atol: 0.1, rtol: 0 }, 'x')).toBe('x: element 1 is 2.5, expected 2 (atol 0.1, rtol 0; max abs error 0.5)');
    expect(mismatch([1, Number.NaN], [1, 2], { atol: 1, rtol: 1 })).toMatch(/element 1 is NaN/);
    expect(mismatch([1], [1, 2], { atol: 1, rtol: 1 }, 'y')).toBe('y: length 1, expected 2');
    expect(mismatch([1, 2], [1.05, 2], { atol: 0.1, rtol: 0 })).toBeNull();
  });
});
