/**
 * Regenerates data/countdown.jsonl and data/arithmetic.jsonl: `node dist/src/cli/write-task-data.js`.
 * A test checks the committed files equal what this writes.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { repositoryRoot } from '../io/repository-root.js';
import { GENERATED_DATA, taskDataText } from '../tasks/builtin.js';

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const dir = join(repositoryRoot(), 'data');
  mkdirSync(dir, { recursive: true });
  for (const task of Object.keys(GENERATED_DATA) as (keyof typeof GENERATED_DATA)[]) {
    writeFileSync(join(dir, `${task}.jsonl`), taskDataText(task));
  }
}
