import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, found from this file's location so tests run from any directory. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PYTHON = join(REPO_ROOT, '.venv', 'bin', 'python');
/** The reference script `npm run check-model` also uses, relative to test/python. */
export const TRANSFORMERS_LOGITS = join('..', '..', 'scripts', 'transformers_logits.py');

/**
 * Runs one of the reference scripts in test/python with the project's venv and returns its
 * stdout. The venv is created by the project's setup; a test that needs it fails loudly without it.
 */
export function runPython(script: string, args: readonly string[], input?: string): string {
  if (!existsSync(PYTHON)) {
    throw new Error(`${PYTHON} is missing: run the project setup to create the Python venv`);
  }
  return execFileSync(PYTHON, [join(REPO_ROOT, 'test', 'python', script), ...args], {
    encoding: 'utf8',
    input,
    maxBuffer: 1 << 30,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/**
 * runPython without blocking the test worker's event loop: vitest's worker must answer its own
 * RPC within a minute, which a long synchronous child process (loading a model in torch) prevents.
 */
export function runPythonAsync(script: string, args: readonly string[], input?: string): Promise<string> {
  if (!existsSync(PYTHON)) {
    return Promise.reject(new Error(`${PYTHON} is missing: run the project setup to create the Python venv`));
  }
  return new Promise((resolvePromise, reject) => {
    const child = execFile(PYTHON, [join(REPO_ROOT, 'test', 'python', script), ...args], { encoding: 'utf8', maxBuffer: 1 << 30 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${script} failed: ${error.message}\n${stderr}`));
      else resolvePromise(stdout);
    });
    child.stdin?.end(input ?? '');
  });
}
