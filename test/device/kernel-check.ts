/**
 * The kernel self-check as a plain program (no vitest), for machines that have only Node and a
 * driver: every check of kernel-checks.ts on the default adapter, one line per comparison, then
 * every shader in shaders/ that no check compiled. Exit code 1 on any mismatch or unchecked shader.
 *   node dist/test/device/kernel-check.js [--json FILE]
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Gpu } from '../../src/gpu/gpu.js';
import { runKernelChecks } from './kernel-checks.js';

const { values: args } = parseArgs({ options: { json: { type: 'string' } } });
const gpu = await Gpu.create();
console.log(`adapter: ${gpu.adapterName}; features: ${[...gpu.features].join(', ')}`);
const report = await runKernelChecks(gpu, (line) => console.log(line));
gpu.destroy();
console.log(
  `\n${report.passed} comparisons passed, ${report.failed.length} failed, ${report.skipped.length} skipped; ` +
    `shaders not exercised: ${report.unexercisedShaders.length ? report.unexercisedShaders.join(', ') : 'none'}`,
);
if (args.json) writeFileSync(args.json, JSON.stringify({ adapter: gpu.adapterName, ...report }, null, 2));
process.exitCode = report.failed.length || report.unexercisedShaders.length ? 1 : 0;
