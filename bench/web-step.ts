// GRPO step time of the same run in Chromium (the page, on the browser's WebGPU adapter) and in
// train.js (Dawn in Node), back to back on this machine:
//   npm run build && node dist/bench/web-step.js [--model tiny|small] [--task tiny-arithmetic]
//        [--prompts 2] [--generations 4] [--new 20] [--steps 3] [--base-dtype f32]
// `small` in the page is the GGUF file that scripts/setup.sh fetched, picked as a user would. Both
// hosts keep the base in f32 unless told otherwise (a browser adapter without shader-f16 must).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveModel } from '../src/io/model-registry.js';
import { repositoryRoot } from '../src/io/repository-root.js';
import { chooseRun, chromiumPath, jsonlRows, openPage, pageDownloads, pageError, waitForRunEnd } from '../web/page-driver.js';
import { benchArgs } from './args.js';

const args = benchArgs(import.meta.url, {
  model: { type: 'string', default: 'tiny' },
  task: { type: 'string', default: 'tiny-arithmetic' },
  prompts: { type: 'string', default: '2' },
  generations: { type: 'string', default: '4' },
  new: { type: 'string', default: '20' },
  steps: { type: 'string', default: '3' },
  'base-dtype': { type: 'string', default: 'f32' },
});
const settings: Record<string, string> = {
  steps: args.steps!,
  promptsPerStep: args.prompts!,
  numGenerations: args.generations!,
  maxNewTokens: args.new!,
  generationBatchSize: String(Number(args.prompts) * Number(args.generations)),
  evalPrompts: '0',
  saveEvery: args.steps!,
  lrSchedule: 'constant',
  baseDtype: args['base-dtype']!,
};
const MINUTES = 60_000;

interface StepTimes {
  /** Seconds of each step: generation, reward, forward/backward and optimizer (no evaluation). */
  total: number[];
  generation: number[];
  /** Forward/backward and optimizer. */
  training: number[];
}

function stepTimes(rows: Record<string, number>[]): StepTimes {
  const steps = rows.filter((r) => r.step > 0 && 'time/train_s' in r);
  return {
    total: steps.map((r) => r['time/generation_s'] + r['time/reward_s'] + r['time/train_s'] + r['time/optimizer_s']),
    generation: steps.map((r) => r['time/generation_s']),
    training: steps.map((r) => r['time/train_s'] + r['time/optimizer_s']),
  };
}

async function inBrowser(): Promise<{ adapter: string; times: StepTimes }> {
  const chromium = chromiumPath();
  if (!chromium) throw new Error('no chromium (scripts/setup.sh installs it; CHROMIUM_PATH names another)');
  const opened = await openPage(chromium, mkdtempSync(join(tmpdir(), 'web-bench-')), 120 * MINUTES);
  try {
    const { page } = opened;
    const adapter = await page.$eval('#adapter', (e) => e.textContent ?? '');
    if (args.model === 'tiny') await chooseRun(page, 'tiny', args.task!, settings);
    else {
      const resolved = resolveModel(args.model!);
      if (resolved.weights.format !== 'gguf') throw new Error(`--model ${args.model}: the bench picks a .gguf file in the page`);
      await chooseRun(page, 'files', args.task!, settings);
      const input = await page.$('input#model-files');
      await input!.uploadFile(resolved.weights.path);
    }
    await page.click('#start');
    const end = await waitForRunEnd(page, 120 * MINUTES);
    if (end !== 'done') throw new Error(`the page's run ended ${end}: ${await pageError(page)}`);
    return { adapter, times: stepTimes(jsonlRows((await pageDownloads(page)).get('metrics.jsonl')!)) };
  } finally {
    await opened.close();
  }
}

function inNode(): StepTimes {
  const out = join(mkdtempSync(join(tmpdir(), 'web-bench-node-')), 'run');
  const flags = Object.entries(settings).flatMap(([k, v]) => [`--${k.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`)}`, v]);
  const train = join(repositoryRoot(), 'dist', 'src', 'cli', 'train.js');
  const run = spawnSync(process.execPath, [train, '--model', args.model!, '--task', args.task!, ...flags, '--out-dir', out], { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' } });
  if (run.status !== 0) throw new Error(`train.js failed:\n${run.stderr}`);
  return stepTimes(jsonlRows(readFileSync(join(out, 'metrics.jsonl'))));
}

const fmt = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(', ');
const later = (xs: number[]) => (xs.length > 1 ? xs.slice(1).reduce((a, b) => a + b, 0) / (xs.length - 1) : NaN);
const report = (host: string, t: StepTimes) =>
  console.log(`${host}: steps ${fmt(t.total)} s; after the first ${later(t.total).toFixed(1)} s/step (generation ${later(t.generation).toFixed(1)}, forward/backward + optimizer ${later(t.training).toFixed(1)})`);
console.log(`${args.model}, ${args.task}: ${args.prompts} prompts × ${args.generations} completions × ≤ ${args.new} tokens, ${args.steps} steps, ${args['base-dtype']} base; load average ${loadavg()[0].toFixed(1)}`);
const node = inNode();
report('train.js (Dawn)', node);
const browser = await inBrowser();
report(`page (${browser.adapter.replace(/^adapter: /, '').split(';')[0]})`, browser.times);
console.log(`page / train.js after the first step: ${(later(browser.times.total) / later(node.total)).toFixed(1)}×; load average now ${loadavg()[0].toFixed(1)}`);
