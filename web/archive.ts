// A checkpoint is a folder; a page hands out single files. A POSIX tar (ustar) archive keeps the
// folder whole, opens with any `tar xf`, and is short to write and read without a library.

export interface ArchiveEntry {
  readonly path: string;
  readonly bytes: Uint8Array;
}

const BLOCK = 512;

function writeField(header: Uint8Array, offset: number, length: number, text: string): void {
  const bytes = new TextEncoder().encode(text);
  if (bytes.byteLength > length) throw new Error(`tar: '${text}' does not fit a ${length}-byte header field`);
  header.set(bytes, offset);
}

const octal = (value: number, width: number) => value.toString(8).padStart(width - 1, '0') + '\0';

function header(path: string, size: number, mtimeSeconds: number): Uint8Array {
  const h = new Uint8Array(BLOCK);
  writeField(h, 0, 100, path);
  writeField(h, 100, 8, octal(0o644, 8));
  writeField(h, 108, 8, octal(0, 8));
  writeField(h, 116, 8, octal(0, 8));
  writeField(h, 124, 12, octal(size, 12));
  writeField(h, 136, 12, octal(mtimeSeconds, 12));
  writeField(h, 156, 1, '0');
  writeField(h, 257, 8, 'ustar\u000000');
  h.fill(0x20, 148, 156); // the checksum counts its own field as spaces
  const sum = h.reduce((a, b) => a + b, 0);
  writeField(h, 148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  return h;
}

export function tarArchive(entries: readonly ArchiveEntry[], mtime = new Date()): Uint8Array {
  const seconds = Math.floor(mtime.getTime() / 1000);
  const size = entries.reduce((n, e) => n + BLOCK + Math.ceil(e.bytes.byteLength / BLOCK) * BLOCK, 2 * BLOCK);
  const out = new Uint8Array(size);
  let at = 0;
  for (const entry of entries) {
    out.set(header(entry.path, entry.bytes.byteLength, seconds), at);
    out.set(entry.bytes, at + BLOCK);
    at += BLOCK + Math.ceil(entry.bytes.byteLength / BLOCK) * BLOCK;
  }
  return out; // the two zero blocks at the end are already zero
}

/** The regular files of a tar archive; `name` is how errors refer to it. */
export function readTarArchive(archive: Uint8Array, name: string): ArchiveEntry[] {
  const text = (from: number, length: number) => {
    const field = archive.subarray(from, from + length);
    const end = field.indexOf(0);
    return new TextDecoder().decode(end < 0 ? field : field.subarray(0, end));
  };
  const entries: ArchiveEntry[] = [];
  for (let at = 0; at + BLOCK <= archive.byteLength; ) {
    const h = archive.subarray(at, at + BLOCK);
    if (h.every((b) => b === 0)) return entries;
    const stored = parseInt(text(at + 148, 8).trim(), 8);
    const sum = h.reduce((a, b, i) => a + (i >= 148 && i < 156 ? 0x20 : b), 0);
    if (stored !== sum) throw new Error(`${name}: not a tar archive (bad header checksum at byte ${at})`);
    const size = parseInt(text(at + 124, 12).trim() || '0', 8);
    const prefix = text(at + 345, 155);
    const path = (prefix ? prefix + '/' : '') + text(at, 100);
    const type = text(at + 156, 1) || '0';
    if (at + BLOCK + size > archive.byteLength) throw new Error(`${name}: truncated (entry ${path} runs past the end)`);
    if (type === '0') entries.push({ path, bytes: archive.slice(at + BLOCK, at + BLOCK + size) });
    at += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
  }
  throw new Error(`${name}: truncated (no end-of-archive blocks)`);
}
