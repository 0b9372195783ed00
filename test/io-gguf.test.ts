import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GgufFile, GgufValueType } from '../src/io/gguf.js';
import { runPython } from './python/run-python.js';

interface QuantFixture {
  path: string;
  metadata: Record<string, { type: keyof typeof GgufValueType; element_type?: keyof typeof GgufValueType; value: unknown }>;
  tensors: Record<string, { type: string; shape: number[]; f32: string }>;
}

const workDir = mkdtempSync(join(tmpdir(), 'io-gguf-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

const f32FromBase64 = (text: string) => {
  const bytes = Buffer.from(text, 'base64');
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
};

/** Indices where two f32 arrays differ bit for bit (NaN-safe), at most five. */
function bitMismatches(actual: Float32Array, expected: Float32Array): number[] {
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  const out: number[] = [];
  for (let i = 0; i < a.length && out.length < 5; i++) if (a[i] !== e[i]) out.push(i);
  return out;
}

describe('GGUF files written by gguf-py', () => {
  const fixture = JSON.parse(runPython('make_gguf_fixture.py', ['quant', workDir])) as QuantFixture;
  const file = GgufFile.open(fixture.path);
  afterAll(() => file.close());

  it('reads the header and a custom alignment', () => {
    expect(file.version).toBe(3);
    expect(file.alignment).toBe(64);
    expect(file.dataOffset % 64).toBe(0);
    expect(file.get('general.architecture')).toBe('test-arch');
  });

  it('reads metadata of every value type, arrays included', () => {
    for (const [key, want] of Object.entries(fixture.metadata)) {
      const entry = file.metadata.get(key);
      expect(entry, key).toBeDefined();
      expect(GgufValueType[entry!.type], key).toBe(want.type);
      if (want.element_type) expect(GgufValueType[entry!.elementType!], key).toBe(want.element_type);
      if (want.type === 'FLOAT32') expect(entry!.value, key).toBe(Math.fround(want.value as number));
      else expect(entry!.value, key).toEqual(want.value);
    }
  });

  it('lists tensors with row-major shapes and GGUF dims', () => {
    for (const [name, want] of Object.entries(fixture.tensors)) {
      const info = file.info(name);
      expect(info.dtype, name).toBe(want.type);
      expect(info.shape, name).toEqual(want.shape);
      expect(info.dims, name).toEqual([...want.shape].reverse());
      expect(info.fileOffset % 64, name).toBe(0);
    }
  });

  for (const name of ['f32', 'f16', 'bf16', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k']) {
    it(`dequantizes ${name.toUpperCase()} bit-identically to gguf.quants.dequantize`, () => {
      const want = f32FromBase64(fixture.tensors[`${name}.weight`].f32);
      const got = file.readFloat32(`${name}.weight`);
      expect(got.length).toBe(want.length);
      expect(bitMismatches(got, want)).toEqual([]);
    });
  }

  it('reads a 3-D tensor and plain integer and f64 tensors', () => {
    for (const name of ['three_d.q8_0', 'plain.i8', 'plain.i16', 'plain.i32', 'plain.f64']) {
      expect(bitMismatches(file.readFloat32(name), f32FromBase64(fixture.tensors[name].f32)), name).toEqual([]);
    }
  });

  it('gives a clear error for a type it cannot dequantize, naming the tensor and the type', () => {
    expect(() => file.readFloat32('iq2_xxs.weight')).toThrow(
      /quant\.gguf: tensor "iq2_xxs.weight": cannot dequantize ggml type IQ2_XXS \(type 16\)/,
    );
    // The raw blocks are still readable, for a caller that handles the type itself.
    expect(file.readRaw('iq2_xxs.weight').byteLength).toBe(2 * 66);
  });

  it('reads the same from a Uint8Array', () => {
    const inMemory = GgufFile.fromBytes(new Uint8Array(readFileSync(fixture.path)), 'quant in memory');
    expect(bitMismatches(inMemory.readFloat32('q4_k.weight'), file.readFloat32('q4_k.weight'))).toEqual([]);
    expect(inMemory.get('t.array_string')).toEqual(['a', '', 'ü b']);
  });
});

/** A minimal GGUF: header, the given metadata bytes, and tensor infos, then `dataBytes` zeros. */
class GgufBuilder {
  private parts: number[] = [];
  u32(value: number) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(value);
    this.parts.push(...b);
    return this;
  }
  u64(value: number | bigint) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(value));
    this.parts.push(...b);
    return this;
  }
  string(text: string) {
    const bytes = Buffer.from(text, 'utf8');
    return this.u64(bytes.length).bytes(bytes);
  }
  bytes(bytes: ArrayLike<number>) {
    this.parts.push(...Array.from(bytes));
    return this;
  }
  header(version: number, tensors: number, kvs: number) {
    return this.bytes(Buffer.from('GGUF')).u32(version).u64(tensors).u64(kvs);
  }
  tensor(name: string, dims: number[], type: number, offset: number) {
    this.string(name).u32(dims.length);
    for (const d of dims) this.u64(d);
    return this.u32(type).u64(offset);
  }
  build(dataBytes: number): Uint8Array {
    const padded = Math.ceil(this.parts.length / 32) * 32;
    const out = new Uint8Array(padded + dataBytes);
    out.set(this.parts);
    return out;
  }
}

describe('malformed GGUF files', () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ['wrong magic', new GgufBuilder().bytes(Buffer.from('GGML')).u32(3).build(0), /not a GGUF file/],
    ['version 1', new GgufBuilder().header(1, 0, 0).build(0), /unsupported GGUF version 1/],
    ['big-endian file', new GgufBuilder().bytes(Buffer.from('GGUF')).u32(0x03000000).u64(0).u64(0).build(0), /big-endian GGUF files are not supported/],
    ['truncated metadata', new GgufBuilder().header(3, 0, 1).string('k').u32(GgufValueType.STRING).u64(1000).bytes([1, 2]).build(0), /string length 1000 runs past the end/],
    ['unknown value type', new GgufBuilder().header(3, 0, 1).string('k').u32(13).u32(0).build(0), /metadata "k" has unknown value type 13/],
    ['huge array count', new GgufBuilder().header(3, 0, 1).string('k').u32(GgufValueType.ARRAY).u32(GgufValueType.UINT32).u64(1e12).build(0), /array of 1000000000000 elements runs past the end/],
    ['unknown tensor type', new GgufBuilder().header(3, 1, 0).tensor('w', [32], 99, 0).build(128), /tensor "w" has unknown ggml type 99/],
    ['row not a whole number of blocks', new GgufBuilder().header(3, 1, 0).tensor('w', [33, 2], 8, 0).build(256), /row of 33 values, not a multiple of its block size 32/],
    ['tensor past the end of the file', new GgufBuilder().header(3, 1, 0).tensor('w', [64], 0, 0).build(100), /tensor "w" data .* lies past the end of the file/],
    ['misaligned tensor offset', new GgufBuilder().header(3, 1, 0).tensor('w', [4], 0, 4).build(64), /offset 4 is not a multiple of the alignment 32/],
    ['overlapping tensors', new GgufBuilder().header(3, 2, 0).tensor('a', [16], 0, 0).tensor('b', [16], 0, 32).build(128), /tensors "a" and "b" overlap/],
    ['bad alignment', new GgufBuilder().header(3, 0, 1).string('general.alignment').u32(GgufValueType.UINT32).u32(48).build(0), /general.alignment must be a power-of-two uint32, got 48/],
    ['too many dimensions', new GgufBuilder().header(3, 1, 0).tensor('w', [1, 1, 1, 1, 1], 0, 0).build(64), /tensor "w" has 5 dimensions/],
  ];
  for (const [label, bytes, message] of cases) {
    it(`rejects ${label}`, () => {
      expect(() => GgufFile.fromBytes(bytes, 'bad.gguf')).toThrow(message);
      expect(() => GgufFile.fromBytes(bytes, 'bad.gguf')).toThrow(/^bad\.gguf: /);
    });
  }
});
