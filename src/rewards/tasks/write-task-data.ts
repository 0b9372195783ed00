/**
 * Regenerates data/countdown.jsonl and data/arithmetic.jsonl: `node dist/src/rewards/tasks/write-task-data.js`.
 * A test checks the committed files equal what this writes.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { repoRoot } from '../repo-root.js';
import { GENERATED_DATA, generatedTaskRows } from './builtin.js';

export function taskDataText(task: keyof typeof GENERATED_DATA): string {
  const { count, seed } = GENERATED_DATA[task];
  return generatedTaskRows(task, count, seed).map((row) => JSON.stringify(row)).join('\n') + '\n';
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const dir = join(repoRoot(), 'data');
  mkdirSync(dir, { recursive: true });
  for (const task of Object.keys(GENERATED_DATA) as (keyof typeof GENERATED_DATA)[]) {
    writeFileSync(join(dir, `${task}.jsonl`), taskDataText(task));
  }
}
