import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { endianness } from 'node:os';

// Every reader in src/io views file bytes through typed arrays, which use the host's byte order,
// while safetensors and GGUF are little-endian on disk. Refuse to run rather than return garbage.
if (endianness() !== 'LE') {
  throw new Error('src/io readers need a little-endian host');
}

/** Random access to the bytes of a file or an in-memory buffer, read on demand. */
export interface ByteSource {
  /** What the bytes are, for error messages (a file path, or a label for a buffer). */
  readonly name: string;
  readonly byteLength: number;
  /**
   * `length` bytes starting at `offset`, in a buffer whose byteOffset is a multiple of 8, so the
   * result can back any typed array. Throws if the range lies outside the source.
   */
  read(offset: number, length: number): Uint8Array;
  close(): void;
}

function checkRange(source: ByteSource, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new RangeError(`${source.name}: invalid byte range offset=${offset} length=${length}`);
  }
  if (offset + length > source.byteLength) {
    throw new RangeError(
      `${source.name}: byte range [${offset}, ${offset + length}) is past the end of the data (${source.byteLength} bytes)`,
    );
  }
}

/** Reads a file with positioned reads: no file is ever held in memory whole. */
export class FileByteSource implements ByteSource {
  readonly byteLength: number;
  private fd: number | null;

  constructor(readonly name: string) {
    this.fd = openSync(name, 'r');
    this.byteLength = fstatSync(this.fd).size;
  }

  read(offset: number, length: number): Uint8Array {
    checkRange(this, offset, length);
    if (this.fd === null) throw new Error(`${this.name}: read after close`);
    const bytes = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, bytes, done, length - done, offset + done);
      if (n === 0) throw new Error(`${this.name}: file ended early at byte ${offset + done}`);
      done += n;
    }
    return bytes;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** A Uint8Array as a ByteSource. Reads share its memory when they are suitably aligned. */
export class MemoryByteSource implements ByteSource {
  readonly byteLength: number;

  constructor(
    private readonly bytes: Uint8Array,
    readonly name = 'buffer',
  ) {
    this.byteLength = bytes.byteLength;
  }

  read(offset: number, length: number): Uint8Array {
    checkRange(this, offset, length);
    const view = this.bytes.subarray(offset, offset + length);
    return view.byteOffset % 8 === 0 ? view : view.slice();
  }

  close(): void {}
}
