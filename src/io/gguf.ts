// GGUF reader (ggml/docs/gguf.md): header, typed metadata, tensor infos, and tensor data read on
// demand. Versions 2 and 3 are read (they differ only in allowing big-endian files, which we
// refuse); version 1, with 32-bit counts, is long obsolete.

import { type ByteSource, FileByteSource, MemoryByteSource } from './byte-source.js';
import { dequantize } from './dequantize.js';
import { type GgmlType, ggmlByteSize, ggmlType } from './ggml-types.js';
import type { TensorInfo, TensorReader } from './tensor-reader.js';

export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** 64-bit integers are numbers when they fit in a double exactly, bigints otherwise. */
export type GgufScalar = number | bigint | boolean | string;
export type GgufValue = GgufScalar | GgufScalar[];

export interface GgufMetadataEntry {
  readonly type: GgufValueType;
  /** For arrays, the type of the elements. */
  readonly elementType?: GgufValueType;
  readonly value: GgufValue;
}

export interface GgufTensorInfo extends TensorInfo {
  /** Dimensions as GGUF stores them: fastest-varying first (the reverse of `shape`). */
  readonly dims: readonly number[];
  readonly type: GgmlType;
  /** Absolute position of the tensor's bytes in the file. */
  readonly fileOffset: number;
  readonly byteLength: number;
}

const MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const DEFAULT_ALIGNMENT = 32;
const MAX_DIMS = 4;
const SCALAR_SIZES: Partial<Record<GgufValueType, number>> = {
  [GgufValueType.UINT8]: 1,
  [GgufValueType.INT8]: 1,
  [GgufValueType.BOOL]: 1,
  [GgufValueType.UINT16]: 2,
  [GgufValueType.INT16]: 2,
  [GgufValueType.UINT32]: 4,
  [GgufValueType.INT32]: 4,
  [GgufValueType.FLOAT32]: 4,
  [GgufValueType.UINT64]: 8,
  [GgufValueType.INT64]: 8,
  [GgufValueType.FLOAT64]: 8,
};

/** Sequential little-endian reads over a ByteSource, fetched in chunks so metadata parsing is cheap. */
class Cursor {
  position = 0;
  private chunk: Uint8Array = new Uint8Array(0);
  private chunkStart = 0;
  private view = new DataView(this.chunk.buffer);
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true });

  constructor(
    private readonly source: ByteSource,
    private readonly chunkSize = 1 << 20,
  ) {}

  get remaining(): number {
    return this.source.byteLength - this.position;
  }

  fail(message: string): never {
    throw new Error(`${this.source.name}: ${message} (at byte ${this.position})`);
  }

  private take(n: number): number {
    if (n > this.remaining) this.fail(`GGUF data ends early: needed ${n} more bytes, ${this.remaining} left`);
    if (this.position < this.chunkStart || this.position + n > this.chunkStart + this.chunk.byteLength) {
      const length = Math.min(Math.max(n, this.chunkSize), this.remaining);
      this.chunk = this.source.read(this.position, length);
      this.chunkStart = this.position;
      this.view = new DataView(this.chunk.buffer, this.chunk.byteOffset, this.chunk.byteLength);
    }
    const at = this.position - this.chunkStart;
    this.position += n;
    return at;
  }

  // take() may replace the chunk and its view, so it must run before the view is read.
  private read<T>(n: number, get: (view: DataView, at: number) => T): T {
    const at = this.take(n);
    return get(this.view, at);
  }

  u8 = () => this.read(1, (v, at) => v.getUint8(at));
  i8 = () => this.read(1, (v, at) => v.getInt8(at));
  u16 = () => this.read(2, (v, at) => v.getUint16(at, true));
  i16 = () => this.read(2, (v, at) => v.getInt16(at, true));
  u32 = () => this.read(4, (v, at) => v.getUint32(at, true));
  i32 = () => this.read(4, (v, at) => v.getInt32(at, true));
  f32 = () => this.read(4, (v, at) => v.getFloat32(at, true));
  f64 = () => this.read(8, (v, at) => v.getFloat64(at, true));
  u64 = (): number | bigint => narrow(this.read(8, (v, at) => v.getBigUint64(at, true)));
  i64 = (): number | bigint => narrow(this.read(8, (v, at) => v.getBigInt64(at, true)));

  /** A u64 that must be a usable size or offset. */
  size(what: string): number {
    const value = this.u64();
    if (typeof value === 'bigint') this.fail(`${what} ${value} is too large`);
    return value;
  }

  string(what: string): string {
    const length = this.size(`${what} string length`);
    if (length > this.remaining) this.fail(`${what} string length ${length} runs past the end of the file`);
    const at = this.take(length);
    try {
      return this.utf8.decode(this.chunk.subarray(at, at + length));
    } catch {
      return this.fail(`${what} is not valid UTF-8`);
    }
  }
}

function narrow(value: bigint): number | bigint {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

function readScalar(cursor: Cursor, type: GgufValueType, key: string): GgufScalar {
  switch (type) {
    case GgufValueType.UINT8: return cursor.u8();
    case GgufValueType.INT8: return cursor.i8();
    case GgufValueType.UINT16: return cursor.u16();
    case GgufValueType.INT16: return cursor.i16();
    case GgufValueType.UINT32: return cursor.u32();
    case GgufValueType.INT32: return cursor.i32();
    case GgufValueType.FLOAT32: return cursor.f32();
    case GgufValueType.FLOAT64: return cursor.f64();
    case GgufValueType.UINT64: return cursor.u64();
    case GgufValueType.INT64: return cursor.i64();
    case GgufValueType.STRING: return cursor.string(`metadata "${key}"`);
    case GgufValueType.BOOL: {
      const byte = cursor.u8();
      if (byte > 1) cursor.fail(`metadata "${key}" has bool byte ${byte}, not 0 or 1`);
      return byte === 1;
    }
    default:
      return cursor.fail(`metadata "${key}" has unknown value type ${type}`);
  }
}

function readEntry(cursor: Cursor, key: string): GgufMetadataEntry {
  const type = cursor.u32() as GgufValueType;
  if (type !== GgufValueType.ARRAY) return { type, value: readScalar(cursor, type, key) };
  const elementType = cursor.u32() as GgufValueType;
  if (elementType === GgufValueType.ARRAY) cursor.fail(`metadata "${key}" is an array of arrays, which GGUF readers do not support`);
  const count = cursor.size(`metadata "${key}" array length`);
  // Every element takes at least one byte (a string at least eight): refuse counts the file cannot hold.
  const minimumSize = elementType === GgufValueType.STRING ? 8 : SCALAR_SIZES[elementType] ?? 1;
  if (count * minimumSize > cursor.remaining) cursor.fail(`metadata "${key}" array of ${count} elements runs past the end of the file`);
  const value: GgufScalar[] = new Array(count);
  for (let i = 0; i < count; i++) value[i] = readScalar(cursor, elementType, key);
  return { type, elementType, value };
}

export class GgufFile implements TensorReader {
  readonly version: number;
  readonly metadata: ReadonlyMap<string, GgufMetadataEntry>;
  readonly alignment: number;
  /** Absolute file offset of the tensor data section. */
  readonly dataOffset: number;
  private readonly tensors: Map<string, GgufTensorInfo>;

  private constructor(private readonly source: ByteSource) {
    try {
      const cursor: Cursor = new Cursor(source);
      if (source.byteLength < 4 || cursor.u32() !== MAGIC) cursor.fail('not a GGUF file (magic is not "GGUF")');
      this.version = cursor.u32();
      if (this.version !== 2 && this.version !== 3) {
        // A big-endian file's small version number reads as a huge one with zero low bytes.
        cursor.fail(
          this.version !== 0 && (this.version & 0xffff) === 0
            ? 'big-endian GGUF files are not supported'
            : `unsupported GGUF version ${this.version} (versions 2 and 3 are supported)`,
        );
      }
      const tensorCount = cursor.size('tensor count');
      const metadataCount = cursor.size('metadata count');
      const metadata = new Map<string, GgufMetadataEntry>();
      for (let i = 0; i < metadataCount; i++) {
        const key = cursor.string('metadata key');
        if (metadata.has(key)) cursor.fail(`duplicate metadata key "${key}"`);
        metadata.set(key, readEntry(cursor, key));
      }
      this.metadata = metadata;
      this.alignment = this.readAlignment(cursor);

      const pending: { name: string; dims: number[]; type: GgmlType; offset: number }[] = [];
      const names = new Set<string>();
      for (let i = 0; i < tensorCount; i++) {
        const name = cursor.string('tensor name');
        if (names.has(name)) cursor.fail(`duplicate tensor "${name}"`);
        names.add(name);
        const nDims = cursor.u32();
        if (nDims < 1 || nDims > MAX_DIMS) cursor.fail(`tensor "${name}" has ${nDims} dimensions (1 to ${MAX_DIMS} allowed)`);
        const dims = Array.from({ length: nDims }, () => cursor.size(`tensor "${name}" dimension`));
        const typeId = cursor.u32();
        const type = ggmlType(typeId);
        if (!type) cursor.fail(`tensor "${name}" has unknown ggml type ${typeId}`);
        if (dims[0] % type.blockSize !== 0) {
          cursor.fail(`tensor "${name}" of type ${type.name} has a row of ${dims[0]} values, not a multiple of its block size ${type.blockSize}`);
        }
        pending.push({ name, dims, type, offset: cursor.size(`tensor "${name}" offset`) });
      }
      this.dataOffset = Math.ceil(cursor.position / this.alignment) * this.alignment;
      this.tensors = this.placeTensors(pending);
    } catch (error) {
      source.close();
      throw error;
    }
  }

  static open(path: string): GgufFile {
    return new GgufFile(new FileByteSource(path));
  }

  static fromBytes(bytes: Uint8Array, name = 'GGUF buffer'): GgufFile {
    return new GgufFile(new MemoryByteSource(bytes, name));
  }

  get name(): string {
    return this.source.name;
  }

  /** The value of a metadata key, or undefined when absent. */
  get(key: string): GgufValue | undefined {
    return this.metadata.get(key)?.value;
  }

  tensorNames(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): GgufTensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new Error(`${this.source.name}: no tensor named "${name}"`);
    return info;
  }

  /** The tensor's bytes exactly as stored (quantized blocks for quantized types). */
  readRaw(name: string): Uint8Array {
    const info = this.info(name);
    return this.source.read(info.fileOffset, info.byteLength);
  }

  /** The tensor dequantized to f32, row-major with shape `info(name).shape`. */
  readFloat32(name: string): Float32Array {
    const info = this.info(name);
    const elements = info.dims.reduce((product, d) => product * d, 1);
    return dequantize(info.type, this.readRaw(name), elements, `${this.source.name}: tensor "${name}"`);
  }

  close(): void {
    this.source.close();
  }

  private readAlignment(cursor: Cursor): number {
    const entry = this.metadata.get('general.alignment');
    if (!entry) return DEFAULT_ALIGNMENT;
    const value = entry.value;
    if (entry.type !== GgufValueType.UINT32 || typeof value !== 'number' || value === 0 || (value & (value - 1)) !== 0) {
      return cursor.fail(`general.alignment must be a power-of-two uint32, got ${String(value)}`);
    }
    return value;
  }

  /** Checks every tensor is aligned, inside the file and apart from the others. */
  private placeTensors(pending: { name: string; dims: number[]; type: GgmlType; offset: number }[]) {
    const placed = pending.map(({ name, dims, type, offset }) => {
      const elements = dims.reduce((product, d) => product * d, 1);
      const byteLength = ggmlByteSize(type, elements);
      const where = `${this.source.name}: tensor "${name}"`;
      if (!Number.isSafeInteger(byteLength)) throw new Error(`${where} is too large (${dims.join(' x ')})`);
      if (offset % this.alignment !== 0) throw new Error(`${where} offset ${offset} is not a multiple of the alignment ${this.alignment}`);
      const fileOffset = this.dataOffset + offset;
      if (fileOffset + byteLength > this.source.byteLength) {
        throw new Error(`${where} data [${fileOffset}, ${fileOffset + byteLength}) lies past the end of the file (${this.source.byteLength} bytes)`);
      }
      const info: GgufTensorInfo = { name, dims, shape: [...dims].reverse(), dtype: type.name, type, fileOffset, byteLength };
      return info;
    });
    const byOffset = [...placed].sort((a, b) => a.fileOffset - b.fileOffset);
    for (let i = 1; i < byOffset.length; i++) {
      const previous = byOffset[i - 1];
      if (byOffset[i].fileOffset < previous.fileOffset + previous.byteLength) {
        throw new Error(`${this.source.name}: tensors "${previous.name}" and "${byOffset[i].name}" overlap`);
      }
    }
    return new Map(placed.map((info) => [info.name, info]));
  }
}
