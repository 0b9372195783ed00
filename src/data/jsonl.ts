import { readFileSync } from 'node:fs';

/** A training/eval row: the user prompt, an optional system message, and fields graders read. */
export type PromptRow = Readonly<Record<string, unknown>> & { readonly prompt: string; readonly system?: string };

/** Where each row read from a file came from, as `file:line` (rows stay plain objects for the graders). */
const sources = new WeakMap<PromptRow, string>();

/** `file:line` of a row read by readPromptRows; undefined for generated rows. */
export function rowSource(row: PromptRow): string | undefined {
  return sources.get(row);
}

/**
 * Reads a JSONL file of prompt rows. A malformed line is an error naming the file and line, and
 * nothing is trained on a partly read file.
 */
export function readPromptRows(path: string): PromptRow[] {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new Error(`${path}: cannot read data file (${(error as Error).message})`);
  }
  const text = decodeUtf8(bytes, path);
  const rows: PromptRow[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (error) {
      throw new Error(`${path}:${i + 1}: not valid JSON (${(error as Error).message})`);
    }
    if (typeof row !== 'object' || row === null || Array.isArray(row)) throw new Error(`${path}:${i + 1}: a row must be a JSON object`);
    const { prompt, system } = row as Record<string, unknown>;
    if (typeof prompt !== 'string' || !prompt) throw new Error(`${path}:${i + 1}: "prompt" must be a non-empty string`);
    if (system !== undefined && typeof system !== 'string') throw new Error(`${path}:${i + 1}: "system" must be a string`);
    rows.push(row as PromptRow);
    sources.set(row as PromptRow, `${path}:${i + 1}`);
  });
  if (!rows.length) throw new Error(`${path}: no rows`);
  return rows;
}

/** The file's text; bytes that are not UTF-8 are an error naming the line, never silently replaced. */
function decodeUtf8(bytes: Buffer, path: string): string {
  const strict = new TextDecoder('utf-8', { fatal: true });
  try {
    return strict.decode(bytes);
  } catch {
    let start = 0;
    for (let line = 1; ; line++) {
      const end = bytes.indexOf(0x0a, start);
      try {
        strict.decode(bytes.subarray(start, end < 0 ? bytes.length : end));
      } catch {
        throw new Error(`${path}:${line}: not valid UTF-8 (save the file as UTF-8)`);
      }
      if (end < 0) throw new Error(`${path}: not valid UTF-8`);
      start = end + 1;
    }
  }
}
