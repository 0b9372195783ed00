// The page in a real browser: headless Chromium (the system's, driven by puppeteer-core) loads the
// page, trains the bundled tiny model for two steps, and what it shows and hands out is checked
// against train.js run with the same settings on this machine (Dawn on lavapipe, or a GPU).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { readTarArchive } from '../web/archive.js';
import { chooseRun, chromiumPath, jsonlRows, openPage, pageDownloads, pageError, waitForRunEnd, type OpenPage } from '../web/page-driver.js';
import { metrics, newDir, runNode, TRAIN } from './helpers/train-cli.js';
import { REPO_ROOT } from './python/run-python.js';

const SCREENSHOTS = join(REPO_ROOT, 'docs', 'web');
const MINUTES = 60_000;

/** The run both hosts make: the page's fields, and train.js's flags of the same names. */
const SETTINGS: Record<string, string> = {
  steps: '2',
  promptsPerStep: '2',
  numGenerations: '4',
  maxNewTokens: '20',
  learningRate: '0.02',
  lrSchedule: 'constant',
  loraRank: '4',
  evalEvery: '2',
  evalPrompts: '2',
  saveEvery: '1',
  seed: '0',
  // SwiftShader has no shader-f16 and train.js's default base on a CPU adapter is f16: both hosts use f32.
  baseDtype: 'f32',
};
const flags = (settings: Record<string, string>) => Object.entries(settings).flatMap(([key, value]) => [`--${key.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`)}`, value]);
const TINY = ['--model', 'tiny', '--task', 'tiny-arithmetic'];

/**
 * SwiftShader and lavapipe both compute in f32 but compile the kernels differently (fused
 * multiply-adds, exp/log approximations), so sums differ in their last bits and values made of
 * many of them agree to about 1e-6 relative. Sampling compares uniform draws with cumulative
 * probabilities, which such differences flip only at a near-tie, so the completions, and with
 * them rewards and lengths, must be identical.
 */
const RELATIVE_TOLERANCE = 1e-4;
const closeTo = (actual: number, expected: number) => Math.abs(actual - expected) <= RELATIVE_TOLERANCE * Math.max(1e-3, Math.abs(expected));

/**
 * AdamW moves each weight by about lr · g/(|g| + ε) (ε = 1e-8): weights whose gradient is near ε —
 * sums that cancel, where the two adapters' last-bit differences are a large part of g — move by
 * visibly different fractions of lr, up to 0.3 % of it here. Every weight must agree to 1 % of lr.
 */
const ADAPTER_TOLERANCE = 0.01 * Number(SETTINGS.learningRate);

let opened: OpenPage | undefined;
afterAll(() => opened?.close());

describe('the page in headless Chromium', () => {
  it('trains tiny for two steps as train.js does, with curves, samples and downloads the CLI loads', async (ctx) => {
    const chromium = chromiumPath();
    if (!chromium) return ctx.skip('no chromium binary (scripts/setup.sh installs Debian’s chromium; CHROMIUM_PATH names another)');
    opened = await openPage(chromium, newDir('web-page-'), 20 * MINUTES);
    const { page, pageErrors } = opened;
    expect(await pageError(page)).toBe('');
    expect(await page.evaluate(() => document.body.dataset.state)).toBe('ready');
    expect(await page.$eval('#adapter', (e) => e.textContent)).toMatch(/^adapter: /);

    await chooseRun(page, 'tiny', 'tiny-arithmetic', SETTINGS);
    mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: join(SCREENSHOTS, 'start.png'), fullPage: true });

    // train.js with the same settings runs meanwhile, on this process's WebGPU adapter.
    const nodeOut = join(newDir('web-node-run-'), 'run');
    const nodeRun = runNode([TRAIN, ...TINY, ...flags(SETTINGS), '--out-dir', nodeOut]);

    await page.click('#start');
    await page.waitForFunction(() => document.body.dataset.step === '1' || document.body.dataset.state === 'failed', { polling: 500, timeout: 15 * MINUTES });
    expect(await pageError(page)).toBe('');
    await page.screenshot({ path: join(SCREENSHOTS, 'mid-run.png'), fullPage: true });
    const end = await waitForRunEnd(page, 15 * MINUTES);
    await page.screenshot({ path: join(SCREENSHOTS, 'end.png'), fullPage: true });
    expect(await pageError(page)).toBe('');
    expect(end).toBe('done');
    expect(pageErrors).toEqual([]);

    // Live curves: the six panels of curves.svg, with the reward components drawn.
    const curveTitles = await page.$$eval('#curves svg text', (texts) => texts.map((t) => t.textContent));
    for (const title of ['reward (mean over completions)', 'validation', 'loss', 'KL to the base model', 'entropy', 'completion length (tokens)', 'format', 'answer']) {
      expect(curveTitles).toContain(title);
    }
    // Samples of the last step, each with every reward component and its reason.
    const headers = await page.$$eval('#samples thead th', (ths) => ths.map((th) => th.textContent));
    expect(headers).toEqual(['step', 'prompt', 'completion', 'finish', 'reward', 'advantage', 'format', 'answer']);
    const samples = await page.$$eval('#samples tbody tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent ?? '')));
    expect(samples.length).toBe(4);
    for (const row of samples) {
      expect(row[0]).toBe('2');
      expect(row[1]).toMatch(/^What is /);
      expect(row[6]).toMatch(/^\d\.\d{3}.* — <answer>/);
    }

    const files = await pageDownloads(page);
    expect([...files.keys()].sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'completions.jsonl', 'curves.svg', 'metrics.jsonl', 'run-checkpoint-2.tar']);
    const finished = await nodeRun;
    expect(finished.status, finished.stderr).toBe(0);

    // Every step matches train.js's: the same completions (rewards, lengths, held-out reward),
    // and loss, entropy and gradient norm within the tolerance above.
    const pageRows = jsonlRows(files.get('metrics.jsonl')!);
    const nodeRows = metrics(nodeOut);
    expect(pageRows.map((r) => r.step)).toEqual(nodeRows.map((r) => r.step));
    expect(nodeRows[2].grad_norm).toBeGreaterThan(0); // the second step has a learning signal (the first does not)
    for (const [i, nodeRow] of nodeRows.entries()) {
      const pageRow = pageRows[i];
      for (const key of Object.keys(nodeRow).filter((k) => /^(reward|reward_std|rewards\/.*\/mean|completions\/.*_length|eval\/.*)$/.test(k))) {
        expect([key, pageRow[key]]).toEqual([key, nodeRow[key]]);
      }
      for (const key of ['loss', 'entropy', 'grad_norm'].filter((k) => k in nodeRow)) {
        expect(closeTo(pageRow[key], nodeRow[key]), `step ${nodeRow.step} ${key}: page ${pageRow[key]}, train.js ${nodeRow[key]}`).toBe(true);
      }
    }

    // The downloaded adapter is PEFT's format, holds what train.js trained, and train.js starts from it.
    const adapterDir = newDir('web-adapter-');
    for (const name of ['adapter_config.json', 'adapter_model.safetensors']) writeFileSync(join(adapterDir, name), files.get(name)!);
    const pageAdapter = SafetensorsFile.open(join(adapterDir, 'adapter_model.safetensors'));
    const nodeAdapter = SafetensorsFile.open(join(nodeOut, 'checkpoint-2', 'adapter_model.safetensors'));
    expect(pageAdapter.tensorNames().sort()).toEqual(nodeAdapter.tensorNames().sort());
    for (const name of nodeAdapter.tensorNames()) {
      const [a, b] = [pageAdapter.readFloat32(name), nodeAdapter.readFloat32(name)];
      const largest = b.reduce((m, x, i) => Math.max(m, Math.abs(a[i] - x)), 0);
      expect(largest, name).toBeLessThanOrEqual(ADAPTER_TOLERANCE);
    }
    const fromAdapter = await runNode([TRAIN, ...TINY, ...flags({ ...SETTINGS, steps: '1' }), '--init-adapter', adapterDir, '--out-dir', join(adapterDir, 'run')]);
    expect(fromAdapter.status, fromAdapter.stderr).toBe(0);
    expect(fromAdapter.stderr).toContain(`from ${adapterDir}`);
    expect(metrics(join(adapterDir, 'run'))[0]['eval/reward']).toBe(pageRows.at(-1)!['eval/reward']);

    // The run archive is a checkpoint train.js continues where the page stopped.
    const resumed = newDir('web-resume-');
    for (const entry of readTarArchive(files.get('run-checkpoint-2.tar')!, 'run-checkpoint-2.tar')) {
      mkdirSync(join(resumed, entry.path, '..'), { recursive: true });
      writeFileSync(join(resumed, entry.path), entry.bytes);
    }
    const more = await runNode([TRAIN, ...TINY, ...flags({ ...SETTINGS, steps: '3' }), '--out-dir', resumed, '--resume']);
    expect(more.status, more.stderr).toBe(0);
    expect(more.stderr).toContain('resuming at step 2');
    expect(metrics(resumed).map((r) => r.step)).toEqual([0, 1, 2, 3]);

    // A user's task whose grader module exports no grading function: refused before the model
    // loads, naming the module, from the grader's Web Worker.
    const taskDir = newDir('web-task-');
    writeFileSync(join(taskDir, 'rows.jsonl'), '{"prompt": "What is 1 + 1?", "target": 2}\n');
    writeFileSync(join(taskDir, 'reward.json'), JSON.stringify({ components: [{ name: 'mine', grader: { type: 'programmatic', module: './grader.mjs' } }] }));
    writeFileSync(join(taskDir, 'grader.mjs'), 'export const grade = () => 1;\n');
    await page.select('#task', 'upload');
    const input = await page.$('input#task-files');
    await input!.uploadFile(...['rows.jsonl', 'reward.json', 'grader.mjs'].map((f) => join(taskDir, f)));
    await page.click('#start');
    expect(await waitForRunEnd(page, 5 * MINUTES)).toBe('failed');
    expect(await pageError(page)).toMatch(/\/uploads\/task\/grader\.mjs exports no function named default/);
  }, 30 * MINUTES);
});
