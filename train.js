#!/usr/bin/env node
// Entry of the main job. The TypeScript sources compile to dist/ on `npm install` (prepare script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('./dist/src/cli/train.js', import.meta.url);
if (!existsSync(entry)) {
  console.error('dist/ is missing: run `npm install` (or `npm run build`) first.');
  process.exit(1);
}
// Runs it as a child whose stderr leaves out Dawn's adapter-limit notices (src/cli/quiet-launch.ts).
const { launchQuietly } = await import('./dist/src/cli/quiet-launch.js');
launchQuietly(fileURLToPath(entry), process.argv.slice(2));
