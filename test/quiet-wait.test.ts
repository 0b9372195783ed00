import { describe, expect, it } from 'vitest';

import { quietWait } from '../src/gpu/quiet-wait.js';

describe('quietWait', () => {
  it('settles as the awaited promise does, for overlapping waits too', async () => {
    const later = <T>(ms: number, value: T) => new Promise<T>((resolve) => setTimeout(() => resolve(value), ms));
    const failing = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('lost')), 5));
    const [a, b, c] = await Promise.allSettled([quietWait(later(20, 'a')), quietWait(later(1, 'b')), quietWait(failing)]);
    expect(a).toEqual({ status: 'fulfilled', value: 'a' });
    expect(b).toEqual({ status: 'fulfilled', value: 'b' });
    expect(c.status === 'rejected' && (c.reason as Error).message).toBe('lost');
    // A wait after the others finished starts sleeping again and still settles.
    expect(await quietWait(later(2, 'd'))).toBe('d');
  });

});
