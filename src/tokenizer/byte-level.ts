/**
 * GPT-2's byte-to-character table (`bytes_to_unicode`): byte-level BPE vocabularies spell every
 * byte as a printable character, keeping printable Latin-1 bytes as themselves and moving the
 * others to U+0100 and up (so a space is "Ġ").
 */
export function byteToUnicode(): string[] {
  const keepsItself = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const table: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(keepsItself(b) ? b : next++);
  return table;
}

/** A token in byte-level spelling: unchanged if it already is, else its UTF-8 bytes re-spelled. */
export function toByteLevelSpelling(token: string, table: readonly string[], alphabet: ReadonlySet<string>): string {
  if ([...token].every((ch) => alphabet.has(ch))) return token;
  return Array.from(new TextEncoder().encode(token), (b) => table[b]).join('');
}
