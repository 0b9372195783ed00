// The safetensors layout and the checks the reference implementation (the Rust `safetensors`
// crate) applies when it reads a header. Pure functions over bytes; file access lives elsewhere.

export const SAFETENSORS_DTYPE_SIZES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
} as const;

export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPE_SIZES;

/** The same header-size cap as the Rust crate: a larger header is treated as hostile. */
export const MAX_HEADER_BYTES = 100_000_000;
export const LENGTH_PREFIX_BYTES = 8;
export const METADATA_KEY = '__metadata__';

export interface SafetensorsEntry {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** Offsets into the whole file (header included), not into the data buffer. */
  readonly begin: number;
  readonly end: number;
}

export interface SafetensorsHeader {
  /** In file order (by offset). */
  readonly entries: readonly SafetensorsEntry[];
  readonly metadata: Readonly<Record<string, string>> | null;
  /** Byte offset in the file where the data buffer starts (8 + header length). */
  readonly dataStart: number;
}

export function isSafetensorsDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === 'string' && Object.hasOwn(SAFETENSORS_DTYPE_SIZES, value);
}

/** Reads the u64 little-endian header length, refusing sizes the reference would refuse. */
export function readHeaderLength(prefix: Uint8Array, fileSize: number, source: string): number {
  if (fileSize < LENGTH_PREFIX_BYTES || prefix.byteLength < LENGTH_PREFIX_BYTES) {
    throw new Error(`${source}: not a safetensors file: ${fileSize} bytes, fewer than the 8-byte length prefix`);
  }
  const length = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (length > BigInt(MAX_HEADER_BYTES)) {
    throw new Error(`${source}: safetensors header length ${length} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  const n = Number(length);
  if (LENGTH_PREFIX_BYTES + n > fileSize) {
    throw new Error(
      `${source}: safetensors header length ${n} runs past the end of the file (${fileSize} bytes)`,
    );
  }
  return n;
}

function parseShape(value: unknown, name: string, source: string): number[] {
  if (!Array.isArray(value) || !value.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new Error(`${source}: tensor "${name}" has an invalid shape ${JSON.stringify(value)}`);
  }
  return value as number[];
}

function parseMetadata(value: unknown, source: string): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${source}: ${METADATA_KEY} must be an object of strings`);
  }
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'string') {
      throw new Error(`${source}: ${METADATA_KEY}["${key}"] is not a string`);
    }
  }
  return value as Record<string, string>;
}

/**
 * Parses and validates the JSON header. `headerBytes` is the header alone; `fileSize` the size of
 * the whole file, which the data buffer must fill exactly.
 */
export function parseHeader(headerBytes: Uint8Array, fileSize: number, source: string): SafetensorsHeader {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new Error(`${source}: safetensors header is not valid UTF-8`);
  }
  if (!text.startsWith('{')) {
    throw new Error(`${source}: safetensors header does not start with "{"`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`${source}: safetensors header is not valid JSON (${(error as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new Error(`${source}: safetensors header is not a JSON object`);
  }

  const dataStart = LENGTH_PREFIX_BYTES + headerBytes.byteLength;
  let metadata: Record<string, string> | null = null;
  const unsorted: { name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(json)) {
    if (name === METADATA_KEY) {
      metadata = parseMetadata(raw, source);
      continue;
    }
    if (typeof raw !== 'object' || raw === null) {
      throw new Error(`${source}: tensor "${name}" header entry is not an object`);
    }
    const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
    if (!isSafetensorsDtype(dtype)) {
      throw new Error(`${source}: tensor "${name}" has unknown dtype ${JSON.stringify(dtype)}`);
    }
    const dims = parseShape(shape, name, source);
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)
    ) {
      throw new Error(`${source}: tensor "${name}" has invalid data_offsets ${JSON.stringify(offsets)}`);
    }
    unsorted.push({ name, dtype, shape: dims, begin: offsets[0] as number, end: offsets[1] as number });
  }

  // Like the reference: sort by offsets, then each tensor must start where the previous ended.
  unsorted.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expectedBegin = 0;
  const entries: SafetensorsEntry[] = [];
  for (const entry of unsorted) {
    if (entry.begin !== expectedBegin || entry.end < entry.begin) {
      const problem = entry.begin < expectedBegin ? 'overlaps the previous tensor' : 'leaves a gap or is reversed';
      throw new Error(
        `${source}: tensor "${entry.name}" data_offsets [${entry.begin}, ${entry.end}] ${problem} (expected to start at ${expectedBegin})`,
      );
    }
    const elements = entry.shape.reduce((product, d) => product * d, 1);
    const expectedBytes = elements * SAFETENSORS_DTYPE_SIZES[entry.dtype];
    if (!Number.isSafeInteger(expectedBytes)) {
      throw new Error(`${source}: tensor "${entry.name}" shape ${JSON.stringify(entry.shape)} overflows`);
    }
    if (entry.end - entry.begin !== expectedBytes) {
      throw new Error(
        `${source}: tensor "${entry.name}" holds ${entry.end - entry.begin} bytes but shape ${JSON.stringify(entry.shape)} of ${entry.dtype} needs ${expectedBytes}`,
      );
    }
    expectedBegin = entry.end;
    entries.push({ ...entry, begin: dataStart + entry.begin, end: dataStart + entry.end });
  }
  if (dataStart + expectedBegin !== fileSize) {
    throw new Error(
      `${source}: tensors cover ${expectedBegin} data bytes but the file holds ${fileSize - dataStart} after the header`,
    );
  }
  return { entries, metadata, dataStart };
}

/**
 * Header JSON for `entries` laid out in order, padded with spaces to a multiple of 8 bytes so
 * the data buffer starts aligned (as the reference writer does).
 */
export function serializeHeader(
  entries: readonly { name: string; dtype: SafetensorsDtype; shape: readonly number[]; byteLength: number }[],
  metadata: Readonly<Record<string, string>> | null,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header[METADATA_KEY] = metadata;
  let offset = 0;
  for (const entry of entries) {
    header[entry.name] = { dtype: entry.dtype, shape: entry.shape, data_offsets: [offset, offset + entry.byteLength] };
    offset += entry.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const bytes = new Uint8Array(LENGTH_PREFIX_BYTES + padded).fill(0x20, LENGTH_PREFIX_BYTES);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(padded), true);
  bytes.set(json, LENGTH_PREFIX_BYTES);
  return bytes;
}
