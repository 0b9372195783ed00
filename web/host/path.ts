// node:path for the browser build: POSIX paths in the page's in-memory volume, whose working
// directory is the root. Only what src/ uses; no library here because the ones that exist
// (path-browserify, pathe) are not dependencies of this project and these few functions are short.

export function isAbsolute(path: string): boolean {
  return path.startsWith('/');
}

/** Resolves `.` and `..` and removes repeated or trailing slashes. */
export function normalize(path: string): string {
  const absolute = isAbsolute(path);
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (!part || part === '.') continue;
    if (part === '..') {
      if (parts.length && parts[parts.length - 1] !== '..') parts.pop();
      else if (!absolute) parts.push('..');
    } else parts.push(part);
  }
  const joined = parts.join('/');
  return absolute ? '/' + joined : joined || '.';
}

export function join(...paths: string[]): string {
  return normalize(paths.filter(Boolean).join('/'));
}

export function resolve(...paths: string[]): string {
  let out = '/';
  for (const path of paths) out = isAbsolute(path) ? path : `${out}/${path}`;
  return normalize(out);
}

export function dirname(path: string): string {
  const normal = normalize(path);
  const slash = normal.lastIndexOf('/');
  if (slash < 0) return '.';
  return slash === 0 ? '/' : normal.slice(0, slash);
}

export function basename(path: string, suffix?: string): string {
  const normal = normalize(path);
  const base = normal.slice(normal.lastIndexOf('/') + 1);
  return suffix && base.endsWith(suffix) && base !== suffix ? base.slice(0, -suffix.length) : base;
}
