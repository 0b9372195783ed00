#!/usr/bin/env node
// Supervised fine-tuning (warm-up before RFT, and the SFT baseline). The TypeScript sources compile to dist/ on `npm install` (prepare script).
import { existsSync } from 'node:fs';

const entry = new URL('./dist/src/cli/sft.js', import.meta.url);
if (!existsSync(entry)) {
  console.error('dist/ is missing: run `npm install` (or `npm run build`) first.');
  process.exit(1);
}
await import(entry.href);
