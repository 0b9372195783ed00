// The page in a real browser: headless Chromium (the system's, driven by puppeteer-core) loads the
// page, trains the bundled tiny model for two steps (stopped after the first and resumed), resumes
// a downloaded run archive in a fresh tab, and trains a .gguf file picked as a user would; what it
// shows and hands out is checked against train.js run with the same settings on this machine (Dawn
// on lavapipe, or a GPU). The tests share one browser and run in order.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { loadCheckpoint } from '../src/rl/checkpoint.js';
import { DEFAULT_CONFIG } from '../src/rl/grpo-config.js';
import { readTarArchive } from '../web/archive.js';
import { chooseRun, chromiumPath, jsonlRows, openPage, pageDownloads, pageError, waitForRunEnd, type OpenPage } from '../web/page-driver.js';
import { metrics, newDir, runNode, TRAIN } from './helpers/train-cli.js';
import { REPO_ROOT, runPython } from './python/run-python.js';

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
  // Only the last step saves by itself: the page's checkpoint after step 1 is the one Stop writes.
  saveEvery: '2',
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
 * AdamW moves each weight by about lr · m̂/(√v̂ + ε) a step (ε = 1e-8). Where the gradient's scale √v̂
 * is well above ε that is about ±lr whatever the last bits of g are: those weights must agree to 1 %
 * of lr. Where √v̂ is below ε the gradient is a sum that cancels to rounding noise (1e-10–1e-9 here,
 * against 1e-6–1e-5 for most weights), the step is about lr·g/ε, proportional to that noise, and the
 * two hosts' noise differs (seen: 2 % of lr at √v̂ = 0.5 ε): those weights are not compared, and there
 * must be few of them. A gradient of exactly 0 is no noise: those weights are compared.
 */
const ADAPTER_TOLERANCE = 0.01 * Number(SETTINGS.learningRate);
const ADAM_EPSILON = 1e-8;
/** The share of a tensor's weights whose gradient may be below Adam's ε (noise-level sums). */
const NOISE_LEVEL_SHARE = 0.01;

/** Index of an adapter tensor in the optimizer's order: modules in model order (each layer's targets in order), A then B. */
function optimizerIndex(name: string): number {
  const match = /layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.lora_([AB])\.weight$/.exec(name);
  if (!match) throw new Error(`not a LoRA tensor name: ${name}`);
  const targets = DEFAULT_CONFIG.loraTargets;
  return (Number(match[1]) * targets.length + targets.indexOf(match[2])) * 2 + (match[3] === 'B' ? 1 : 0);
}

/** Every weight of the adapter in `files` is within ADAPTER_TOLERANCE of train.js's in `checkpoint`, where Adam's step is not noise (see above). */
function expectAdapterLike(files: ReadonlyMap<string, Uint8Array>, checkpoint: string): void {
  const dir = newDir('web-adapter-');
  writeFileSync(join(dir, 'adapter_model.safetensors'), files.get('adapter_model.safetensors')!);
  const pageAdapter = SafetensorsFile.open(join(dir, 'adapter_model.safetensors'));
  const nodeAdapter = SafetensorsFile.open(join(checkpoint, 'adapter_model.safetensors'));
  const { optimizer } = loadCheckpoint(checkpoint);
  const beta2 = DEFAULT_CONFIG.adamBetas[1];
  expect(pageAdapter.tensorNames().sort()).toEqual(nodeAdapter.tensorNames().sort());
  for (const name of nodeAdapter.tensorNames()) {
    const [a, b] = [pageAdapter.readFloat32(name), nodeAdapter.readFloat32(name)];
    const i = optimizerIndex(name);
    const v = optimizer.v[i];
    expect(v.length, name).toBe(b.length);
    const correction = 1 - beta2 ** optimizer.steps[i];
    // A gradient of exactly 0 (A before B has moved) is no noise: only weight decay moves those weights.
    const noise = (k: number) => v[k] > 0 && Math.sqrt(v[k] / correction) < ADAM_EPSILON;
    let largest = 0;
    let noiseLevel = 0;
    b.forEach((x, k) => {
      if (noise(k)) noiseLevel++;
      else largest = Math.max(largest, Math.abs(a[k] - x));
    });
    expect(largest, name).toBeLessThanOrEqual(ADAPTER_TOLERANCE);
    expect(noiseLevel, `${name}: weights whose gradient is below Adam's ε`).toBeLessThanOrEqual(NOISE_LEVEL_SHARE * b.length);
  }
}

/**
 * Every step's row matches train.js's: the same completions (rewards, lengths, held-out reward),
 * and loss, entropy and gradient norm within the tolerance above.
 */
function expectMetricsLike(pageRows: Record<string, number>[], nodeRows: Record<string, number>[]): void {
  expect(pageRows.map((r) => r.step)).toEqual(nodeRows.map((r) => r.step));
  for (const [i, nodeRow] of nodeRows.entries()) {
    const pageRow = pageRows[i];
    for (const key of Object.keys(nodeRow).filter((k) => /^(reward|reward_std|rewards\/.*\/mean|completions\/.*_length|eval\/.*)$/.test(k))) {
      expect([key, pageRow[key]]).toEqual([key, nodeRow[key]]);
    }
    for (const key of ['loss', 'entropy', 'grad_norm'].filter((k) => k in nodeRow)) {
      expect(closeTo(pageRow[key], nodeRow[key]), `step ${nodeRow.step} ${key}: page ${pageRow[key]}, train.js ${nodeRow[key]}`).toBe(true);
    }
  }
}

/** A metrics row without what the clock (durations, rates) and the host (memory) decide. */
const computed = (row: Record<string, number>) => Object.fromEntries(Object.entries(row).filter(([key]) => !/^(time|tokens_per_second|memory)\//.test(key)));

let opened: OpenPage | undefined;
afterAll(() => opened?.close());

/** What the first test hands the second: the run archive downloaded when stopped, and the finished run's downloads. */
let stoppedArchive: Uint8Array | undefined;
let finishedRun: Map<string, Uint8Array> | undefined;

describe('the page in headless Chromium', () => {
  it('trains tiny for two steps as train.js does, stopped after the first and resumed, with curves, samples and downloads the CLI loads', async (ctx) => {
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

    // train.js with the same settings runs meanwhile, uninterrupted, on this process's WebGPU
    // adapter; it saves every step, so its step-1 checkpoint is there to compare with the page's.
    const nodeOut = join(newDir('web-node-run-'), 'run');
    const nodeRun = runNode([TRAIN, ...TINY, ...flags({ ...SETTINGS, saveEvery: '1' }), '--out-dir', nodeOut]);

    // Stop while the first step runs: the page finishes it, saves a checkpoint and offers it.
    await page.click('#start');
    await page.waitForFunction(() => /^step 1\/2: sampling /.test(document.querySelector('#progress')?.textContent ?? '') || document.body.dataset.state === 'failed', { polling: 200, timeout: 15 * MINUTES });
    await page.click('#stop');
    expect(await waitForRunEnd(page, 15 * MINUTES)).toBe('stopped');
    expect(await pageError(page)).toBe('');
    expect(await page.$eval('#progress', (e) => e.textContent)).toMatch(/^step 1\/2 · .* — stopped after step 1; Resume continues from its checkpoint$/);
    expect(await page.$$eval('button', (buttons) => buttons.map((b) => [b.id, b.disabled]))).toEqual([['start', false], ['stop', true], ['resume', false]]);
    await page.screenshot({ path: join(SCREENSHOTS, 'mid-run.png'), fullPage: true });
    const atStop = await pageDownloads(page);
    expect([...atStop.keys()].sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'completions.jsonl', 'curves.svg', 'metrics.jsonl', 'run-checkpoint-1.tar']);
    expect(jsonlRows(atStop.get('metrics.jsonl')!).map((r) => r.step)).toEqual([0, 1]);
    expect(readTarArchive(atStop.get('run-checkpoint-1.tar')!, 'run-checkpoint-1.tar').map((e) => e.path)).toContain('checkpoint-1/trainer_state.json');
    stoppedArchive = atStop.get('run-checkpoint-1.tar');

    // Resume in the page: the second step, from the checkpoint Stop wrote.
    await page.click('#resume');
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
    finishedRun = files;
    const finished = await nodeRun;
    expect(finished.status, finished.stderr).toBe(0);

    // The stopped and resumed run is the uninterrupted one: every step as train.js's, and the
    // adapters at the stop and at the end as train.js's checkpoints.
    const pageRows = jsonlRows(files.get('metrics.jsonl')!);
    const nodeRows = metrics(nodeOut);
    expect(nodeRows[2].grad_norm).toBeGreaterThan(0); // the second step has a learning signal (the first does not)
    expectMetricsLike(pageRows, nodeRows);
    expectAdapterLike(atStop, join(nodeOut, 'checkpoint-1'));
    expectAdapterLike(files, join(nodeOut, 'checkpoint-2'));

    // The downloaded adapter is PEFT's format and train.js starts from it.
    const adapterDir = newDir('web-adapter-');
    for (const name of ['adapter_config.json', 'adapter_model.safetensors']) writeFileSync(join(adapterDir, name), files.get(name)!);
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

  it('resumes the run archive downloaded at the stop in a fresh tab: the same second step as the page resumed in place', async (ctx) => {
    if (!opened || !stoppedArchive || !finishedRun) return ctx.skip('needs the stopped and finished run of the test before');
    const { page, pageErrors } = await opened.newTab();
    const archive = join(newDir('web-archive-'), 'run-checkpoint-1.tar');
    writeFileSync(archive, stoppedArchive);
    const input = await page.$('input#resume-file');
    await input!.uploadFile(archive);
    await page.waitForFunction(() => document.querySelector('#progress')?.textContent?.startsWith('loaded ') || document.body.dataset.state === 'failed', { polling: 200, timeout: MINUTES });
    expect(await pageError(page)).toBe('');
    expect(await page.$eval('#progress', (e) => e.textContent)).toBe('loaded checkpoint-1 (step 1) from run-checkpoint-1.tar; press Resume to continue.');
    // The form shows the saved run's settings, which Resume must keep.
    for (const [key, value] of Object.entries(SETTINGS)) expect([key, await page.$eval(`[name="${key}"]`, (f) => (f as HTMLInputElement).value)]).toEqual([key, value]);

    await page.click('#resume');
    expect(await waitForRunEnd(page, 15 * MINUTES)).toBe('done');
    expect(await pageError(page)).toBe('');
    expect(await page.$eval('#progress', (e) => e.textContent)).toMatch(/^step 2\/2 · .* — done$/);
    expect(pageErrors).toEqual([]);
    // Same browser, same adapter, same checkpoint: the same computation, to the bit.
    const files = await pageDownloads(page);
    expect([...files.keys()].sort()).toEqual([...finishedRun.keys()].sort());
    expect(jsonlRows(files.get('metrics.jsonl')!).map(computed)).toEqual(jsonlRows(finishedRun.get('metrics.jsonl')!).map(computed));
    expect(Buffer.compare(files.get('adapter_model.safetensors')!, finishedRun.get('adapter_model.safetensors')!)).toBe(0);
    expect(new TextDecoder().decode(files.get('completions.jsonl'))).toBe(new TextDecoder().decode(finishedRun.get('completions.jsonl')));
    await page.close();
  }, 20 * MINUTES);

  it('trains a .gguf model picked in the page on a JSONL task with a JavaScript grader, as train.js does on the same files', async (ctx) => {
    if (!opened) return ctx.skip('needs the browser of the first test');
    // A small Llama as llama.cpp writes one (Q8_0/Q4_1 weights, tied output, byte-level BPE tokenizer
    // and chat template in the metadata), written by gguf-py; random weights, so the reward is the
    // share of digits in a completion, which varies between completions and gives every step a signal.
    const dir = newDir('web-gguf-');
    const { path: gguf } = JSON.parse(runPython('make_gguf_fixture.py', ['model', dir])) as { path: string };
    writeFileSync(join(dir, 'rows.jsonl'), ['Count to ten.', 'Name a prime number.'].map((prompt) => JSON.stringify({ prompt })).join('\n') + '\n');
    writeFileSync(join(dir, 'reward.json'), JSON.stringify({ components: [{ name: 'digits', grader: { type: 'programmatic', module: './digits.mjs' } }] }));
    writeFileSync(join(dir, 'digits.mjs'), 'export default ({ completion }) => (completion.length ? (completion.match(/[0-9]/g) ?? []).length / completion.length : 0);\n');
    const settings = { ...SETTINGS, steps: '1', maxNewTokens: '8', evalPrompts: '0', saveEvery: '1', logCompletions: '8' };
    const nodeOut = join(dir, 'node-run');
    const nodeRun = runNode([TRAIN, '--model', gguf, '--task', join(dir, 'rows.jsonl'), '--reward-config', join(dir, 'reward.json'), ...flags(settings), '--out-dir', nodeOut]);

    const { page, pageErrors } = await opened.newTab();
    await chooseRun(page, 'files', 'upload', settings);
    await (await page.$('input#model-files'))!.uploadFile(gguf);
    await (await page.$('input#task-files'))!.uploadFile(...['rows.jsonl', 'reward.json', 'digits.mjs'].map((f) => join(dir, f)));
    await page.click('#start');
    expect(await waitForRunEnd(page, 15 * MINUTES)).toBe('done');
    expect(await pageError(page)).toBe('');
    expect(pageErrors).toEqual([]);
    const files = await pageDownloads(page);
    expect(JSON.parse(new TextDecoder().decode(files.get('adapter_config.json')))).toMatchObject({ base_model_name_or_path: '/uploads/model/model.gguf' });

    const finished = await nodeRun;
    expect(finished.status, finished.stderr).toBe(0);
    const nodeRows = metrics(nodeOut);
    expect(nodeRows[1].reward_std).toBeGreaterThan(0);
    expect(nodeRows[1].grad_norm).toBeGreaterThan(0);
    expectMetricsLike(jsonlRows(files.get('metrics.jsonl')!), nodeRows);
    // The same tokenizer and weights: the same sampled text, token for token.
    const texts = (jsonl: string) => jsonl.trim().split('\n').map((line) => (JSON.parse(line) as { completion: string }).completion);
    expect(texts(new TextDecoder().decode(files.get('completions.jsonl')))).toEqual(texts(readFileSync(join(nodeOut, 'completions.jsonl'), 'utf8')));
    expectAdapterLike(files, join(nodeOut, 'checkpoint-1'));
    await page.close();
  }, 20 * MINUTES);
});
