// node:os for the browser build.
export function hostname(): string {
  return 'browser';
}

export function endianness(): 'LE' | 'BE' {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 'LE' : 'BE';
}

/** A page cannot see the system's memory: the trainer asks only when a micro-batch is left to it, which the page never does. */
export function freemem(): number {
  throw new Error('os.freemem: a page cannot see the system’s memory; give the micro-batch size');
}
