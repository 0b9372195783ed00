import { type ByteSource, FileByteSource, MemoryByteSource } from './byte-source.js';
import { bf16ArrayToF32, f16ArrayToF32 } from './half-precision.js';
import {
  LENGTH_PREFIX_BYTES,
  parseHeader,
  readHeaderLength,
  type SafetensorsDtype,
  type SafetensorsEntry,
} from './safetensors-format.js';
import type { TensorInfo, TensorReader } from './tensor-reader.js';

/** The typed array each dtype is read into. F16 and BF16 stay as raw bits in a Uint16Array. */
export interface SafetensorsArrayTypes {
  F64: Float64Array;
  F32: Float32Array;
  F16: Uint16Array;
  BF16: Uint16Array;
  I64: BigInt64Array;
  U64: BigUint64Array;
  I32: Int32Array;
  U32: Uint32Array;
  I16: Int16Array;
  U16: Uint16Array;
  I8: Int8Array;
  U8: Uint8Array;
  BOOL: Uint8Array;
}

export type SafetensorsArray = SafetensorsArrayTypes[SafetensorsDtype];

export interface SafetensorsTensor<D extends SafetensorsDtype = SafetensorsDtype> {
  readonly dtype: D;
  readonly shape: readonly number[];
  readonly data: SafetensorsArrayTypes[D];
}

/** A view of `bytes` (8-byte aligned, as ByteSource.read guarantees) as the dtype's typed array. */
export function viewAs<D extends SafetensorsDtype>(dtype: D, bytes: Uint8Array): SafetensorsArrayTypes[D] {
  const { buffer, byteOffset, byteLength } = bytes;
  const views: { [K in SafetensorsDtype]: () => SafetensorsArrayTypes[K] } = {
    F64: () => new Float64Array(buffer, byteOffset, byteLength / 8),
    F32: () => new Float32Array(buffer, byteOffset, byteLength / 4),
    F16: () => new Uint16Array(buffer, byteOffset, byteLength / 2),
    BF16: () => new Uint16Array(buffer, byteOffset, byteLength / 2),
    I64: () => new BigInt64Array(buffer, byteOffset, byteLength / 8),
    U64: () => new BigUint64Array(buffer, byteOffset, byteLength / 8),
    I32: () => new Int32Array(buffer, byteOffset, byteLength / 4),
    U32: () => new Uint32Array(buffer, byteOffset, byteLength / 4),
    I16: () => new Int16Array(buffer, byteOffset, byteLength / 2),
    U16: () => new Uint16Array(buffer, byteOffset, byteLength / 2),
    I8: () => new Int8Array(buffer, byteOffset, byteLength),
    U8: () => new Uint8Array(buffer, byteOffset, byteLength),
    BOOL: () => new Uint8Array(buffer, byteOffset, byteLength),
  };
  return views[dtype]();
}

/** Widens any safetensors tensor to f32 (f16/bf16 exactly; 64-bit integers may round). */
export function toFloat32(tensor: SafetensorsTensor): Float32Array {
  switch (tensor.dtype) {
    case 'F16':
      return f16ArrayToF32(tensor.data as Uint16Array);
    case 'BF16':
      return bf16ArrayToF32(tensor.data as Uint16Array);
    case 'I64':
    case 'U64': {
      const data = tensor.data as BigInt64Array | BigUint64Array;
      const out = new Float32Array(data.length);
      for (let i = 0; i < data.length; i++) out[i] = Number(data[i]);
      return out;
    }
    default:
      return Float32Array.from(tensor.data as Exclude<SafetensorsArray, BigInt64Array | BigUint64Array>);
  }
}

/**
 * A safetensors file. Opening reads and validates only the header; each tensor is read from the
 * source when asked for, so a large checkpoint is never held in memory whole.
 */
export class SafetensorsFile implements TensorReader {
  readonly metadata: Readonly<Record<string, string>> | null;
  private readonly entries: Map<string, SafetensorsEntry>;

  private constructor(private readonly source: ByteSource) {
    try {
      const length = readHeaderLength(source.read(0, Math.min(LENGTH_PREFIX_BYTES, source.byteLength)), source.byteLength, source.name);
      const header = parseHeader(source.read(LENGTH_PREFIX_BYTES, length), source.byteLength, source.name);
      this.metadata = header.metadata;
      this.entries = new Map(header.entries.map((entry) => [entry.name, entry]));
    } catch (error) {
      source.close();
      throw error;
    }
  }

  static open(path: string): SafetensorsFile {
    return new SafetensorsFile(new FileByteSource(path));
  }

  static fromBytes(bytes: Uint8Array, name = 'safetensors buffer'): SafetensorsFile {
    return new SafetensorsFile(new MemoryByteSource(bytes, name));
  }

  get name(): string {
    return this.source.name;
  }

  tensorNames(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  info(name: string): TensorInfo {
    const { dtype, shape } = this.entry(name);
    return { name, dtype, shape };
  }

  readTensor(name: string): SafetensorsTensor {
    const entry = this.entry(name);
    const bytes = this.source.read(entry.begin, entry.end - entry.begin);
    return { dtype: entry.dtype, shape: entry.shape, data: viewAs(entry.dtype, bytes) };
  }

  readFloat32(name: string): Float32Array {
    const tensor = this.readTensor(name);
    // An F32 read is already a fresh copy owned by the caller, so no second copy is made.
    return tensor.dtype === 'F32' && this.source instanceof FileByteSource
      ? (tensor.data as Float32Array)
      : toFloat32(tensor);
  }

  close(): void {
    this.source.close();
  }

  private entry(name: string): SafetensorsEntry {
    const entry = this.entries.get(name);
    if (!entry) throw new Error(`${this.source.name}: no tensor named "${name}"`);
    return entry;
  }
}
