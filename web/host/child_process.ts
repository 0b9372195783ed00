// node:child_process for the browser build: a page cannot start processes, so the graders that
// need one (the Triton runner, external-process graders) say where they run instead.
export function spawn(command: string): never {
  throw new Error(
    `'${command}' cannot run in a browser: the Triton reward and external-process graders need the Python runner and Node — train with them through node train.js`,
  );
}
export type ChildProcessWithoutNullStreams = never;
