// node:os for the browser build.
export function hostname(): string {
  return 'browser';
}

export function endianness(): 'LE' | 'BE' {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 'LE' : 'BE';
}
