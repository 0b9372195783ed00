import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SafetensorsFile, toFloat32 } from '../src/io/safetensors.js';
import { serializeSafetensors, writeSafetensors, type TensorsToWrite } from '../src/io/safetensors-writer.js';
import { SAFETENSORS_DTYPE_SIZES, type SafetensorsDtype } from '../src/io/safetensors-format.js';
import { ShardedSafetensors } from '../src/io/sharded-safetensors.js';
import { f32ArrayToBf16, f32ArrayToF16 } from '../src/io/half-precision.js';
import { runPython } from './python/run-python.js';

interface DescribedTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  bytes: string;
  f32: string;
}
interface Description {
  tensors: Record<string, DescribedTensor>;
  metadata: Record<string, string> | null;
  numpy_checked?: boolean;
}

const workDir = mkdtempSync(join(tmpdir(), 'io-safetensors-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

const fromBase64 = (text: string) => new Uint8Array(Buffer.from(text, 'base64'));
const bytesOf = (view: ArrayBufferView) => new Uint8Array(view.buffer, view.byteOffset, view.byteLength);

describe('safetensors written by Python, read by us', () => {
  const expected = JSON.parse(runPython('safetensors_reference.py', ['write', workDir])) as Description;
  const path = join(workDir, 'reference.safetensors');
  const dtypesCovered = new Set(Object.values(expected.tensors).map((t) => t.dtype));

  it('covers every dtype', () => {
    expect([...dtypesCovered].sort()).toEqual(Object.keys(SAFETENSORS_DTYPE_SIZES).sort());
  });

  for (const [label, open] of [
    ['from a file path', () => SafetensorsFile.open(path)],
    ['from a Uint8Array', () => SafetensorsFile.fromBytes(new Uint8Array(readFileSync(path)), 'reference')],
  ] as const) {
    it(`matches byte for byte and as f32, ${label}`, () => {
      const file = open();
      try {
        expect(file.metadata).toEqual(expected.metadata);
        expect(file.tensorNames().sort()).toEqual(Object.keys(expected.tensors).sort());
        for (const [name, want] of Object.entries(expected.tensors)) {
          const tensor = file.readTensor(name);
          expect(tensor.dtype, name).toBe(want.dtype);
          expect(tensor.shape, name).toEqual(want.shape);
          expect(bytesOf(tensor.data), name).toEqual(fromBase64(want.bytes));
          expect(bytesOf(file.readFloat32(name)), name).toEqual(fromBase64(want.f32));
          expect(bytesOf(toFloat32(tensor)), name).toEqual(fromBase64(want.f32));
        }
      } finally {
        file.close();
      }
    });
  }
});

/** Deterministic tensors of every dtype, built here so Python sees only our file. */
function ourTensors(includeBf16: boolean): TensorsToWrite {
  const values = Array.from({ length: 24 }, (_, i) => (i - 11) * 1.75 + (i % 3) / 7);
  const ints = values.map((v) => Math.round(v * 5));
  const tensors: Record<string, TensorsToWrite[string]> = {
    'w.f64': { dtype: 'F64', shape: [4, 6], data: Float64Array.from(values) },
    'w.f32': { dtype: 'F32', shape: [2, 3, 4], data: Float32Array.from(values) },
    'w.f16': { dtype: 'F16', shape: [24], data: f32ArrayToF16(values) },
    'i.i64': { dtype: 'I64', shape: [24], data: BigInt64Array.from(ints.map((v) => BigInt(v) * 10_000_000_000n)) },
    'i.u64': { dtype: 'U64', shape: [24], data: BigUint64Array.from(ints.map((v) => BigInt(Math.abs(v)) << 40n)) },
    'i.i32': { dtype: 'I32', shape: [6, 4], data: Int32Array.from(ints.map((v) => v * 100_000)) },
    'i.u32': { dtype: 'U32', shape: [6, 4], data: Uint32Array.from(ints.map((v) => Math.abs(v) * 100_000_000)) },
    'i.i16': { dtype: 'I16', shape: [24], data: Int16Array.from(ints.map((v) => v * 500)) },
    'i.u16': { dtype: 'U16', shape: [24], data: Uint16Array.from(ints.map((v) => Math.abs(v) * 1000)) },
    'i.i8': { dtype: 'I8', shape: [24], data: Int8Array.from(ints) },
    'i.u8': { dtype: 'U8', shape: [24], data: Uint8Array.from(ints.map((v) => Math.abs(v))) },
    'm.bool': { dtype: 'BOOL', shape: [3, 8], data: Uint8Array.from(ints.map((v) => (v > 0 ? 1 : 0))) },
    'e.empty': { dtype: 'F32', shape: [0, 3], data: new Float32Array(0) },
    'e.scalar': { dtype: 'I32', shape: [], data: Int32Array.of(-7) },
  };
  if (includeBf16) tensors['w.bf16'] = { dtype: 'BF16', shape: [3, 8], data: f32ArrayToBf16(values) };
  return tensors;
}

describe('safetensors written by us, read by Python', () => {
  for (const includeBf16 of [true, false]) {
    it(`round-trips every dtype${includeBf16 ? ' (torch loader)' : ' without BF16 (torch and numpy loaders)'}`, () => {
      const tensors = ourTensors(includeBf16);
      const metadata = { format: 'pt', written_by: 'webgpu-rft' };
      const path = join(workDir, `ours-${includeBf16}.safetensors`);
      writeSafetensors(path, tensors, metadata);
      const seen = JSON.parse(runPython('safetensors_reference.py', ['check', path])) as Description;
      expect(seen.numpy_checked).toBe(!includeBf16);
      expect(seen.metadata).toEqual(metadata);
      expect(Object.keys(seen.tensors).sort()).toEqual(Object.keys(tensors).sort());
      for (const [name, tensor] of Object.entries(tensors)) {
        expect(seen.tensors[name].dtype, name).toBe(tensor.dtype);
        expect(seen.tensors[name].shape, name).toEqual(tensor.shape);
        expect(fromBase64(seen.tensors[name].bytes), name).toEqual(bytesOf(tensor.data));
      }
      // And our own reader agrees with what we wrote, through the same file.
      const file = SafetensorsFile.open(path);
      for (const [name, tensor] of Object.entries(tensors)) {
        expect(bytesOf(file.readTensor(name).data), name).toEqual(bytesOf(tensor.data));
      }
      file.close();
    });
  }

  it('pads the header to a multiple of 8 and aligns every tensor to its element size', () => {
    const bytes = serializeSafetensors(ourTensors(true));
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(headerLength % 8).toBe(0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<
      string,
      { dtype: SafetensorsDtype; data_offsets: [number, number] }
    >;
    for (const [name, entry] of Object.entries(header)) {
      expect(entry.data_offsets[0] % SAFETENSORS_DTYPE_SIZES[entry.dtype], name).toBe(0);
    }
  });

  it('refuses data whose size disagrees with the shape, naming the tensor', () => {
    expect(() => serializeSafetensors({ bad: { dtype: 'F32', shape: [3], data: new Float32Array(2) } })).toThrow(
      /"bad" has 8 bytes of data but shape \[3\] of F32 needs 12/,
    );
  });
});

/** A file with the given header object and `dataBytes` zero bytes after it. */
function rawFile(header: unknown, dataBytes: number, headerLengthOverride?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const bytes = new Uint8Array(8 + json.byteLength + dataBytes);
  new DataView(bytes.buffer).setBigUint64(0, headerLengthOverride ?? BigInt(json.byteLength), true);
  bytes.set(json, 8);
  return bytes;
}

describe('malformed safetensors files', () => {
  const ok = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F16', shape: [2], data_offsets: [8, 12] } };
  const cases: [string, Uint8Array, RegExp][] = [
    ['shorter than the length prefix', new Uint8Array(5), /fewer than the 8-byte length prefix/],
    ['header length past the 100 MB limit', rawFile(ok, 12, 100_000_001n), /exceeds the 100000000-byte limit/],
    ['header length past the end of the file', rawFile(ok, 12, 5000n), /runs past the end of the file/],
    ['truncated data', rawFile(ok, 10), /tensors cover 12 data bytes but the file holds 10/],
    ['trailing bytes after the data', rawFile(ok, 16), /tensors cover 12 data bytes but the file holds 16/],
    ['bad JSON', rawFile('{"a": {"dtype": "F32",', 0), /not valid JSON/],
    ['header not an object', rawFile('[1, 2]', 0), /does not start with "\{"/],
    ['invalid UTF-8', rawFile('{"\udcff"}', 0).map((b, i) => (i === 10 ? 0xff : b)), /not valid UTF-8/],
    ['unknown dtype', rawFile({ a: { dtype: 'F8_E9M9', shape: [2], data_offsets: [0, 2] } }, 2), /"a" has unknown dtype "F8_E9M9"/],
    [
      'overlapping offsets',
      rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12),
      /"b" data_offsets \[4, 12\] overlaps the previous tensor/,
    ],
    [
      'gap between tensors',
      rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [12, 16] } }, 16),
      /"b" data_offsets \[12, 16\] leaves a gap/,
    ],
    ['first tensor not at zero', rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8), /"a" .* leaves a gap/],
    [
      'shape disagreeing with the byte length',
      rawFile({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8),
      /"a" holds 8 bytes but shape \[3\] of F32 needs 12/,
    ],
    ['offsets out of the file', rawFile({ a: { dtype: 'U8', shape: [64], data_offsets: [0, 64] } }, 8), /cover 64 data bytes but the file holds 8/],
    ['negative dimension', rawFile({ a: { dtype: 'U8', shape: [-1], data_offsets: [0, 0] } }, 0), /"a" has an invalid shape/],
    ['missing offsets', rawFile({ a: { dtype: 'U8', shape: [1] } }, 1), /"a" has invalid data_offsets/],
    ['non-string metadata', rawFile({ __metadata__: { n: 1 } }, 0), /__metadata__\["n"\] is not a string/],
  ];
  for (const [label, bytes, message] of cases) {
    it(`rejects ${label}`, () => {
      expect(() => SafetensorsFile.fromBytes(bytes, 'bad.safetensors')).toThrow(message);
      expect(() => SafetensorsFile.fromBytes(bytes, 'bad.safetensors')).toThrow(/^bad\.safetensors: /);
    });
  }

  it('names the file when reading from a path', () => {
    const path = join(workDir, 'truncated.safetensors');
    writeFileSync(path, rawFile(ok, 3));
    expect(() => SafetensorsFile.open(path)).toThrow(new RegExp(`^${path}: tensors cover 12 data bytes`));
  });

  it('accepts a header padded with trailing spaces', () => {
    const file = SafetensorsFile.fromBytes(rawFile(`${JSON.stringify(ok)}      `, 12));
    expect(file.tensorNames().sort()).toEqual(['a', 'b']);
  });
});

describe('sharded checkpoints', () => {
  const dir = join(workDir, 'sharded');
  const shardA = { 'layer.0.w': { dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) } } as const;
  const shardB = { 'layer.1.w': { dtype: 'F16', shape: [2], data: f32ArrayToF16([3, 4]) } } as const;

  function writeShards(weightMap: Record<string, string>): string {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    writeSafetensors(join(dir, 'model-00001-of-00002.safetensors'), shardA);
    writeSafetensors(join(dir, 'model-00002-of-00002.safetensors'), shardB);
    const indexPath = join(dir, 'model.safetensors.index.json');
    writeFileSync(indexPath, JSON.stringify({ metadata: { total_size: 12 }, weight_map: weightMap }));
    return indexPath;
  }

  it('reads tensors through the weight_map', () => {
    const reader = ShardedSafetensors.open(
      writeShards({ 'layer.0.w': 'model-00001-of-00002.safetensors', 'layer.1.w': 'model-00002-of-00002.safetensors' }),
    );
    expect(reader.tensorNames().sort()).toEqual(['layer.0.w', 'layer.1.w']);
    expect([...reader.readFloat32('layer.0.w')]).toEqual([1, 2]);
    expect([...reader.readFloat32('layer.1.w')]).toEqual([3, 4]);
    expect(reader.info('layer.1.w')).toEqual({ name: 'layer.1.w', dtype: 'F16', shape: [2] });
    reader.close();
  });

  it('rejects a weight_map that points at the wrong shard or a missing file', () => {
    expect(() =>
      ShardedSafetensors.open(
        writeShards({ 'layer.0.w': 'model-00002-of-00002.safetensors', 'layer.1.w': 'model-00002-of-00002.safetensors' }),
      ),
    ).toThrow(/puts "layer.0.w" in model-00002-of-00002.safetensors, which has no such tensor/);
    expect(() => ShardedSafetensors.open(writeShards({ 'layer.0.w': 'missing.safetensors' }))).toThrow(
      /shard "missing.safetensors" listed in weight_map does not exist/,
    );
    expect(() => ShardedSafetensors.open(writeShards({ 'layer.0.w': 'model-00001-of-00002.safetensors' }))).not.toThrow();
  });
});
