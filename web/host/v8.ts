// node:v8 for the browser build: a page cannot set V8's flags. src/ sets --expose-gc only to reach
// gc() through node:vm, whose counterpart here needs no flag.
export function setFlagsFromString(): void {}
