import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { SAFETENSORS_DTYPE_SIZES, serializeHeader, type SafetensorsDtype } from './safetensors-format.js';
import type { SafetensorsArrayTypes } from './safetensors.js';

/** One tensor to write: the data may be the dtype's typed array or its raw little-endian bytes. */
export interface TensorToWrite<D extends SafetensorsDtype = SafetensorsDtype> {
  readonly dtype: D;
  readonly shape: readonly number[];
  readonly data: SafetensorsArrayTypes[D] | Uint8Array;
}

export type TensorsToWrite = Readonly<Record<string, TensorToWrite>>;

function bytesOf(data: ArrayBufferView): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Orders tensors as the reference writer does: larger element size first, then by name, so every
 * tensor starts at an offset aligned to its own element size.
 */
function layout(tensors: TensorsToWrite, destination: string) {
  const entries = Object.entries(tensors).map(([name, tensor]) => {
    const elements = tensor.shape.reduce((product, d) => product * d, 1);
    const byteLength = elements * SAFETENSORS_DTYPE_SIZES[tensor.dtype];
    if (!tensor.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(`${destination}: tensor "${name}" has an invalid shape ${JSON.stringify(tensor.shape)}`);
    }
    if (tensor.data.byteLength !== byteLength) {
      throw new Error(
        `${destination}: tensor "${name}" has ${tensor.data.byteLength} bytes of data but shape ${JSON.stringify(tensor.shape)} of ${tensor.dtype} needs ${byteLength}`,
      );
    }
    return { name, dtype: tensor.dtype, shape: tensor.shape, byteLength, bytes: bytesOf(tensor.data) };
  });
  entries.sort(
    (a, b) =>
      SAFETENSORS_DTYPE_SIZES[b.dtype] - SAFETENSORS_DTYPE_SIZES[a.dtype] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
  return entries;
}

/** The whole file as one buffer; for small outputs and tests. */
export function serializeSafetensors(
  tensors: TensorsToWrite,
  metadata: Readonly<Record<string, string>> | null = null,
): Uint8Array {
  const entries = layout(tensors, 'safetensors buffer');
  const header = serializeHeader(entries, metadata);
  const out = new Uint8Array(header.byteLength + entries.reduce((sum, e) => sum + e.byteLength, 0));
  out.set(header);
  let offset = header.byteLength;
  for (const entry of entries) {
    out.set(entry.bytes, offset);
    offset += entry.byteLength;
  }
  return out;
}

/**
 * Writes a safetensors file atomically: everything goes to a temporary file in the same
 * directory, which is flushed and then renamed over `path`, so a reader (or a crash) never sees a
 * half-written checkpoint.
 */
export function writeSafetensors(
  path: string,
  tensors: TensorsToWrite,
  metadata: Readonly<Record<string, string>> | null = null,
): void {
  const entries = layout(tensors, path);
  const header = serializeHeader(entries, metadata);
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  const fd = openSync(temporary, 'w');
  try {
    writeFully(fd, header);
    for (const entry of entries) writeFully(fd, entry.bytes);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(temporary, path);
  } catch (error) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    rmSync(temporary, { force: true });
    throw error;
  }
}

function writeFully(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.byteLength) done += writeSync(fd, bytes, done, bytes.byteLength - done);
}
