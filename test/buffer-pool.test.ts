import { describe, expect, it } from 'vitest';
import { BufferPool, CACHE_CAP_WITHOUT_SUBALLOCATION, sizeClass } from '../src/gpu/buffer-pool.js';
import { Gpu } from '../src/gpu/gpu.js';
import { add } from '../src/ops/binary.js';
import { useGpu } from './helpers/gpu.js';

const KiB = 1024;

describe('buffer pool cache cap', () => {
  const gpu = useGpu();
  const pool = (maxCachedBytes: number) => {
    const g = gpu();
    return new BufferPool(g.device, g.device.limits.maxBufferSize, maxCachedBytes);
  };

  it('keeps released buffers for reuse while under the cap', () => {
    const p = pool(64 * KiB);
    const a = p.acquire(4 * KiB);
    p.release(a);
    expect(p.cachedBytes).toBe(4 * KiB);
    expect(p.acquire(4 * KiB)).toBe(a);
    expect(p.cachedBytes).toBe(0);
    expect(p.allocatedBytes).toBe(4 * KiB);
    expect(p.liveBytes).toBe(4 * KiB);
  });

  it('destroys the least recently used size classes first when the cap is passed', () => {
    const p = pool(12 * KiB);
    const small = p.acquire(2 * KiB);
    const medium = p.acquire(4 * KiB);
    const large = p.acquire(8 * KiB);
    p.release(small); // classes by use: 2K
    p.release(medium); // 2K, 4K
    // Reusing the 2 KiB class makes it the most recent: 4K, 2K.
    p.release(p.acquire(2 * KiB));
    expect(p.cachedClasses()).toEqual([4 * KiB, 2 * KiB]);
    p.release(large); // 14 KiB cached > 12: the 4 KiB class goes, 2K and 8K stay.
    expect(p.cachedClasses()).toEqual([2 * KiB, 8 * KiB]);
    expect(p.cachedBytes).toBe(10 * KiB);
    expect(p.allocatedBytes).toBe(10 * KiB);
    // The destroyed class allocates afresh; the kept ones are reused.
    const before = p.allocatedBytes;
    const again = p.acquire(4 * KiB);
    expect(again).not.toBe(medium);
    expect(p.allocatedBytes).toBe(before + 4 * KiB);
    expect(p.acquire(8 * KiB)).toBe(large);
  });

  it('evicts a buffer larger than the cap at once', () => {
    const p = pool(4 * KiB);
    p.release(p.acquire(16 * KiB));
    expect(p.cachedBytes).toBe(0);
    expect(p.allocatedBytes).toBe(0);
  });

  it('trim() keeps at most the given bytes, oldest classes going first', () => {
    const p = pool(1 << 30);
    const buffers = [1, 2, 4, 8].map((k) => p.acquire(k * KiB));
    for (const b of buffers) p.release(b);
    expect(p.cachedBytes).toBe(15 * KiB);
    p.trim(12 * KiB);
    expect(p.cachedClasses()).toEqual([4 * KiB, 8 * KiB].map(sizeClass));
    p.trim();
    expect(p.cachedBytes).toBe(0);
    expect(p.allocatedBytes).toBe(0);
    expect(p.cachedClasses()).toEqual([]);
  });

  it('serves a request from a cached class at most reuseSlack larger when its own class is empty', () => {
    const MiB = 1024 * KiB;
    const p = pool(1 << 30);
    p.reuseSlack = 0.25;
    // Classes above 1 MiB step by 1/8 of the power of two: 8 MiB, 9 MiB, 10 MiB, …
    const nine = p.acquire(9 * MiB);
    const twelve = p.acquire(12 * MiB);
    p.release(nine);
    p.release(twelve);
    const allocated = p.allocatedBytes;
    // 8 MiB: 9 MiB is within 25% (12 is not); the buffer keeps its size in the accounting.
    expect(p.acquire(8 * MiB)).toBe(nine);
    expect(p.liveBytes).toBe(9 * MiB);
    // 7 MiB: 12 MiB is 71% larger, so a new buffer.
    const seven = p.acquire(7 * MiB);
    expect(seven).not.toBe(twelve);
    expect(p.allocatedBytes).toBe(allocated + 7 * MiB);
    p.release(nine);
    expect(p.cachedClasses()).toContain(9 * MiB);
    p.reuseSlack = 0;
    expect(p.acquire(8 * MiB)).not.toBe(nine);
    // Powers of two up to 1 MiB are twice apart: never shared at the default slack.
    const q = pool(1 << 30);
    q.release(q.acquire(512 * KiB));
    expect(q.acquire(256 * KiB).size).toBe(256 * KiB);
  });

  it('refuses a buffer released twice', () => {
    const p = pool(1 << 30);
    const b = p.acquire(KiB);
    p.release(b);
    expect(() => p.release(b)).toThrow(/released twice/);
  });

  it('counts the peak of device bytes, cache included, since resetPeak()', () => {
    const p = pool(1 << 30);
    p.release(p.acquire(8 * KiB));
    p.resetPeak();
    const b = p.acquire(4 * KiB);
    expect(p.peakAllocatedBytes).toBe(12 * KiB);
    p.release(b);
    p.trim();
    expect(p.allocatedBytes).toBe(0);
    expect(p.peakAllocatedBytes).toBe(12 * KiB);
  });
});

describe('memory defaults of the device', () => {
  const gpu = useGpu();

  it('Dawn sub-allocates by default with an uncapped pool; without sub-allocation the pool is capped and trimmed between phases', async () => {
    const g = gpu();
    expect(g.suballocation).toBe(true);
    expect(g.trimBetweenPhases).toBe(false);
    expect(g.pool.maxCachedBytes).toBe(Number.POSITIVE_INFINITY);
    const own = await Gpu.create({ suballocation: false });
    try {
      expect(own.suballocation).toBe(false);
      expect(own.pool.maxCachedBytes).toBe(CACHE_CAP_WITHOUT_SUBALLOCATION);
      expect(own.trimBetweenPhases).toBe(true);
    } finally {
      own.destroy();
    }
    await expect(Gpu.create({ suballocation: true, toggles: ['disable_resource_suballocation'] })).rejects.toThrow(/contradicts suballocation: true/);
  });
});

describe('buffer pool eviction with recorded work', () => {
  const gpu = useGpu();

  it('submits recorded commands before destroying a buffer they use', async () => {
    const g = gpu();
    g.pool.trim();
    const keep = g.pool.maxCachedBytes;
    g.pool.maxCachedBytes = 0;
    try {
      const result = g.tidy(() => {
        const a = g.tensor([1, 2, 3], [3]);
        // `a` is released (and, with no cache, destroyed) while the copy into `b` is still only recorded.
        return g.keep(add(a, a));
      });
      expect(Array.from(await result.toArray())).toEqual([2, 4, 6]);
      result.dispose();
      await g.sync();
    } finally {
      g.pool.maxCachedBytes = keep;
    }
  });
});
