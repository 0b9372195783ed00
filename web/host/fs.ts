// node:fs for the browser build: an in-memory volume with the synchronous calls src/ makes.
// The page writes the bundled model, the task data and the files a user picks into it; the
// trainer's logs, adapters and checkpoints land in it and the page offers them as downloads.
import { basename, dirname, resolve } from './path.js';

interface FileEntry {
  kind: 'file';
  /** Capacity grows by doubling so appends stay cheap; `size` bytes of it are the file. */
  bytes: Uint8Array;
  size: number;
}
type Entry = FileEntry | { kind: 'directory' };

const entries = new Map<string, Entry>([['/', { kind: 'directory' }]]);
const open = new Map<number, { path: string; position: number }>();
let nextFd = 3;

type PathOrFd = string | number;
type Data = string | ArrayBufferView;
type Encoding = BufferEncoding | { encoding?: BufferEncoding | null } | null | undefined;

export class FileSystemError extends Error {
  constructor(
    readonly code: string,
    description: string,
    syscall: string,
    readonly path: string,
  ) {
    super(`${code}: ${description}, ${syscall} '${path}'`);
  }
}

const missing = (syscall: string, path: string) => new FileSystemError('ENOENT', 'no such file or directory', syscall, path);

function pathOf(target: PathOrFd, syscall: string): string {
  if (typeof target === 'string') return resolve(target);
  const handle = open.get(target);
  if (!handle) throw new FileSystemError('EBADF', 'bad file descriptor', syscall, String(target));
  return handle.path;
}

function file(path: string, syscall: string): FileEntry {
  const entry = entries.get(path);
  if (!entry) throw missing(syscall, path);
  if (entry.kind !== 'file') throw new FileSystemError('EISDIR', 'illegal operation on a directory', syscall, path);
  return entry;
}

function parentMustExist(path: string, syscall: string): void {
  if (entries.get(dirname(path))?.kind !== 'directory') throw missing(syscall, path);
}

function toBytes(data: Data): Uint8Array {
  return typeof data === 'string' ? new TextEncoder().encode(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function encodingOf(options: Encoding): BufferEncoding | null {
  if (typeof options === 'string') return options;
  return options?.encoding ?? null;
}

/** Writes `data` at `position`, growing the file as needed. */
function writeAt(entry: FileEntry, data: Uint8Array, position: number): void {
  const end = position + data.byteLength;
  if (end > entry.bytes.byteLength) {
    const grown = new Uint8Array(Math.max(end, entry.bytes.byteLength * 2, 256));
    grown.set(entry.bytes.subarray(0, entry.size));
    entry.bytes = grown;
  }
  entry.bytes.set(data, position);
  entry.size = Math.max(entry.size, end);
}

function createFile(path: string, syscall: string): FileEntry {
  parentMustExist(path, syscall);
  const entry: FileEntry = { kind: 'file', bytes: new Uint8Array(0), size: 0 };
  entries.set(path, entry);
  return entry;
}

// The volume's root stands for the repository root (src/io/repository-root.ts looks for this
// file above the bundle's /app.js); modules compute paths from it as they load.
writeFileSync('/package.json', '{"name": "webgpu-rft-page"}\n');

export function existsSync(path: string): boolean {
  return entries.has(resolve(path));
}

export function readFileSync(target: PathOrFd): Uint8Array;
export function readFileSync(target: PathOrFd, options: BufferEncoding | { encoding: BufferEncoding }): string;
export function readFileSync(target: PathOrFd, options?: Encoding): string | Uint8Array {
  const entry = file(pathOf(target, 'open'), 'open');
  const bytes = entry.bytes.slice(0, entry.size);
  return encodingOf(options) ? new TextDecoder().decode(bytes) : bytes;
}

export function writeFileSync(target: PathOrFd, data: Data): void {
  const path = pathOf(target, 'open');
  const entry = typeof target === 'number' ? file(path, 'write') : createFile(path, 'open');
  if (typeof target === 'number') {
    const handle = open.get(target)!;
    writeAt(entry, toBytes(data), handle.position);
    handle.position += toBytes(data).byteLength;
  } else writeAt(entry, toBytes(data), 0);
}

export function appendFileSync(path: string, data: Data): void {
  const absolute = resolve(path);
  const entry = entries.has(absolute) ? file(absolute, 'open') : createFile(absolute, 'open');
  writeAt(entry, toBytes(data), entry.size);
}

export function mkdirSync(path: string, options: { recursive?: boolean } = {}): void {
  const absolute = resolve(path);
  const existing = entries.get(absolute);
  if (existing) {
    if (options.recursive && existing.kind === 'directory') return;
    throw new FileSystemError('EEXIST', 'file already exists', 'mkdir', absolute);
  }
  if (options.recursive && !entries.has(dirname(absolute))) mkdirSync(dirname(absolute), options);
  parentMustExist(absolute, 'mkdir');
  entries.set(absolute, { kind: 'directory' });
}

/** Paths strictly inside a directory, at any depth. */
function descendants(directory: string): string[] {
  const prefix = directory === '/' ? '/' : directory + '/';
  return [...entries.keys()].filter((p) => p !== directory && p.startsWith(prefix));
}

export function readdirSync(path: string): string[] {
  const absolute = resolve(path);
  const entry = entries.get(absolute);
  if (!entry) throw missing('scandir', absolute);
  if (entry.kind !== 'directory') throw new FileSystemError('ENOTDIR', 'not a directory', 'scandir', absolute);
  return descendants(absolute)
    .filter((p) => dirname(p) === absolute)
    .map((p) => basename(p))
    .sort();
}

export interface Stats {
  size: number;
  isFile(): boolean;
  isDirectory(): boolean;
}

function stats(entry: Entry): Stats {
  return { size: entry.kind === 'file' ? entry.size : 0, isFile: () => entry.kind === 'file', isDirectory: () => entry.kind === 'directory' };
}

export function statSync(path: string): Stats {
  const entry = entries.get(resolve(path));
  if (!entry) throw missing('stat', resolve(path));
  return stats(entry);
}

export function fstatSync(fd: number): Stats {
  return stats(entries.get(pathOf(fd, 'fstat'))!);
}

export function openSync(path: string, flags = 'r'): number {
  const absolute = resolve(path);
  const entry = entries.get(absolute);
  if (flags.startsWith('r')) {
    if (!entry) throw missing('open', absolute);
  } else if (flags.startsWith('w')) {
    if (entry?.kind === 'directory') throw new FileSystemError('EISDIR', 'illegal operation on a directory', 'open', absolute);
    createFile(absolute, 'open');
  } else throw new FileSystemError('EINVAL', `open flags '${flags}' are not supported in the browser volume`, 'open', absolute);
  const fd = nextFd++;
  open.set(fd, { path: absolute, position: 0 });
  return fd;
}

export function readSync(fd: number, buffer: ArrayBufferView, offset: number, length: number, position: number | null): number {
  const handle = open.get(fd);
  const entry = file(pathOf(fd, 'read'), 'read');
  const start = position ?? handle!.position;
  const count = Math.max(0, Math.min(length, entry.size - start));
  new Uint8Array(buffer.buffer, buffer.byteOffset + offset, count).set(entry.bytes.subarray(start, start + count));
  if (position === null) handle!.position += count;
  return count;
}

export function writeSync(fd: number, buffer: ArrayBufferView, offset = 0, length = buffer.byteLength - offset, position: number | null = null): number {
  const handle = open.get(fd)!;
  const entry = file(pathOf(fd, 'write'), 'write');
  writeAt(entry, new Uint8Array(buffer.buffer, buffer.byteOffset + offset, length), position ?? handle.position);
  if (position === null) handle.position += length;
  return length;
}

export function closeSync(fd: number): void {
  pathOf(fd, 'close');
  open.delete(fd);
}

/** Memory is as durable as it gets here; only the descriptor is checked. */
export function fsyncSync(fd: number): void {
  pathOf(fd, 'fsync');
}

export function renameSync(from: string, to: string): void {
  const source = resolve(from);
  const target = resolve(to);
  const entry = entries.get(source);
  if (!entry) throw missing('rename', source);
  parentMustExist(target, 'rename');
  if (entries.get(target)?.kind === 'directory' && descendants(target).length) {
    throw new FileSystemError('ENOTEMPTY', 'directory not empty', 'rename', target);
  }
  const moved = [source, ...descendants(source)];
  for (const path of moved) {
    const value = entries.get(path)!;
    entries.delete(path);
    entries.set(target + path.slice(source.length), value);
  }
}

export function rmSync(path: string, options: { recursive?: boolean; force?: boolean } = {}): void {
  const absolute = resolve(path);
  const entry = entries.get(absolute);
  if (!entry) {
    if (options.force) return;
    throw missing('rm', absolute);
  }
  const inside = descendants(absolute);
  if (entry.kind === 'directory' && !options.recursive) throw new FileSystemError('ERR_FS_EISDIR', 'is a directory', 'rm', absolute);
  for (const p of inside) entries.delete(p);
  entries.delete(absolute);
}

/** Files are never shared between names here, so a link is a copy; what matters is that it fails when the name exists. */
export function linkSync(existing: string, newPath: string): void {
  const target = resolve(newPath);
  if (entries.has(target)) throw new FileSystemError('EEXIST', 'file already exists', 'link', target);
  const source = file(resolve(existing), 'link');
  writeAt(createFile(target, 'link'), source.bytes.subarray(0, source.size), 0);
}
