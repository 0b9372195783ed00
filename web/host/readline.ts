// node:readline for the browser build: only child processes' output is read line by line, and a page has none.
export function createInterface(): never {
  throw new Error('reading a process line by line needs Node (node train.js)');
}
