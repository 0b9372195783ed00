// node:vm for the browser build. src/ evaluates only `gc` in a new context, to collect the JS
// objects of Dawn's Node bindings; a browser frees its WebGPU objects with its own collector and
// offers no way to force one, so the counterpart is a collection that does nothing.
export function runInNewContext(code: string): unknown {
  if (code !== 'gc') throw new Error(`node:vm in a browser: only 'gc' is provided, not ${JSON.stringify(code)}`);
  return () => {};
}
