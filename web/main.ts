// The page: the same GRPO trainer as train.js (src/rl), on navigator.gpu, with the files it reads
// and writes in an in-memory volume (web/host/fs.ts) that the page fills and offers as downloads.
import shaderSources from 'virtual:shaders';
import { Gpu } from '../src/gpu/gpu.js';
import { kebab, checkSettings } from '../src/io/settings-schema.js';
import { matmulVariantChoices, restoreMatmulVariantChoices } from '../src/ops/matmul-variants.js';
import { latestCheckpoint } from '../src/rl/checkpoint.js';
import { DEFAULT_CONFIG, GRPO_SETTINGS, validateConfig, type GrpoConfig } from '../src/rl/grpo-config.js';
import type { StepMetrics } from '../src/rl/grpo-update.js';
import { GrpoTrainer } from '../src/rl/grpo-trainer.js';
import { tarArchive, readTarArchive } from './archive.js';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from './host/fs.js';
import { basename, dirname, join } from './host/path.js';
import { NO_WEBGPU_HELP } from './host/webgpu.js';

const RUN_DIR = '/run';
const MODEL_UPLOADS = '/uploads/model';
const TASK_UPLOADS = '/uploads/task';
/** Where the registry expects the `small` model's GGUF; a picked file of that name is put there. */
const SMALL_GGUF = '.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf';
const BUILTIN_TASKS = ['tiny-arithmetic', 'quick-arithmetic', 'arithmetic', 'countdown'];

/** The settings shown as fields; every other one goes in the JSON box. */
const MAIN_SETTINGS: (keyof GrpoConfig)[] = [
  'steps', 'promptsPerStep', 'numGenerations', 'maxNewTokens', 'learningRate', 'lrSchedule', 'warmupSteps', 'loraRank', 'loraAlpha',
  'beta', 'temperature', 'lossType', 'scaleRewards', 'microBatchSize', 'generationBatchSize', 'evalEvery', 'evalPrompts', 'saveEvery',
  'logCompletions', 'baseDtype', 'seed',
];

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const ui = {
  adapter: $<HTMLDivElement>('adapter'),
  error: $<HTMLDivElement>('error'),
  model: $<HTMLSelectElement>('model'),
  modelFilesBox: $<HTMLSpanElement>('model-files-box'),
  modelFiles: $<HTMLInputElement>('model-files'),
  task: $<HTMLSelectElement>('task'),
  taskFilesBox: $<HTMLSpanElement>('task-files-box'),
  taskFiles: $<HTMLInputElement>('task-files'),
  settings: $<HTMLDivElement>('settings'),
  moreSettings: $<HTMLTextAreaElement>('more-settings'),
  tuneKernels: $<HTMLInputElement>('tune-kernels'),
  start: $<HTMLButtonElement>('start'),
  stop: $<HTMLButtonElement>('stop'),
  resume: $<HTMLButtonElement>('resume'),
  resumeFile: $<HTMLInputElement>('resume-file'),
  progress: $<HTMLDivElement>('progress'),
  curves: $<HTMLDivElement>('curves'),
  samples: $<HTMLTableElement>('samples'),
  downloads: $<HTMLDivElement>('downloads'),
};

type PageState = 'loading' | 'ready' | 'running' | 'done' | 'stopped' | 'failed' | 'unavailable';
let trainer: GrpoTrainer | undefined;
/** Stop was pressed during this run; a trainer still loading takes it up once it exists. */
let stopPressed = false;
let adapterHasF16 = false;

function setState(state: PageState): void {
  document.body.dataset.state = state;
  const running = state === 'running';
  ui.start.disabled = running || state === 'loading' || state === 'unavailable';
  ui.stop.disabled = !running;
  ui.resume.disabled = running || state === 'unavailable' || latestCheckpoint(RUN_DIR) === null;
  ui.resumeFile.disabled = running || state === 'loading' || state === 'unavailable';
}

function showError(error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  // A refusal names its flag, file or line; anything else is a bug, whose stack helps.
  const bug = error instanceof TypeError || error instanceof RangeError || error instanceof ReferenceError;
  ui.error.textContent = bug && error instanceof Error ? `${message}\n${error.stack ?? ''}` : message;
  ui.error.hidden = false;
}

function clearError(): void {
  ui.error.hidden = true;
  ui.error.textContent = '';
}

// ---- the volume: bundled files in, run files out

async function loadVolume(): Promise<void> {
  mkdirSync('/shaders', { recursive: true });
  for (const [file, source] of Object.entries(shaderSources)) writeFileSync(`/shaders/${file}`, source);
  const manifest = (await (await fetch('volume/manifest.json')).json()) as string[];
  await Promise.all(
    manifest.map(async (path) => {
      const response = await fetch(`volume/${path}`);
      if (!response.ok) throw new Error(`volume/${path}: ${response.status} ${response.statusText}`);
      mkdirSync(dirname(`/${path}`), { recursive: true });
      writeFileSync(`/${path}`, new Uint8Array(await response.arrayBuffer()));
    }),
  );
}

async function putFiles(dir: string, files: FileList | readonly File[]): Promise<string[]> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const paths: string[] = [];
  for (const file of Array.from(files)) {
    const path = join(dir, file.name);
    writeFileSync(path, new Uint8Array(await file.arrayBuffer()));
    paths.push(path);
  }
  return paths;
}

/** The model setting for the picked files: a GGUF file, or a checkpoint folder's files. */
async function pickedModel(): Promise<string> {
  const files = Array.from(ui.modelFiles.files ?? []);
  if (!files.length) throw new Error('model: pick the checkpoint’s files (a .gguf, or config.json, model.safetensors, tokenizer.json, tokenizer_config.json)');
  const ggufs = files.filter((f) => f.name.endsWith('.gguf'));
  if (ggufs.length > 1) throw new Error(`model: pick one .gguf file, not ${ggufs.length}`);
  if (ggufs.length === 1 && files.length > 1) throw new Error('model: a .gguf file holds the whole model; pick it alone');
  if (ggufs.length === 1 && ggufs[0].name === basename(SMALL_GGUF)) {
    await putFiles(`/${dirname(SMALL_GGUF)}`, ggufs);
    return 'small';
  }
  const paths = await putFiles(MODEL_UPLOADS, files);
  return ggufs.length ? paths[0] : MODEL_UPLOADS;
}

/** The task and reward settings for the picked files: one JSONL, one reward config, its grader modules. */
async function pickedTask(): Promise<Pick<GrpoConfig, 'task' | 'rewardConfig'>> {
  const files = Array.from(ui.taskFiles.files ?? []);
  const jsonl = files.filter((f) => f.name.endsWith('.jsonl'));
  const configs = files.filter((f) => f.name.endsWith('.json'));
  if (jsonl.length !== 1) throw new Error(`task: pick one .jsonl file of prompt rows (picked ${jsonl.length})`);
  if (configs.length !== 1) throw new Error(`task: pick one reward config .json next to the data (picked ${configs.length}); its graders score the completions`);
  await putFiles(TASK_UPLOADS, files);
  return { task: join(TASK_UPLOADS, jsonl[0].name), rewardConfig: join(TASK_UPLOADS, configs[0].name) };
}

// ---- settings: the CLI's schema, names and defaults

function buildSettingsForm(): void {
  for (const key of MAIN_SETTINGS) {
    const schema = GRPO_SETTINGS[key];
    const label = document.createElement('label');
    label.textContent = `--${kebab(key)}`;
    let field: HTMLInputElement | HTMLSelectElement;
    if (schema.enum) {
      field = document.createElement('select');
      for (const choice of schema.enum) field.add(new Option(String(choice), String(choice)));
    } else {
      field = document.createElement('input');
      field.type = 'text';
    }
    field.name = key;
    field.value = String(DEFAULT_CONFIG[key]);
    field.title = `default: ${JSON.stringify(DEFAULT_CONFIG[key])}`;
    label.append(field);
    ui.settings.append(label);
  }
}

function settingField(key: string): HTMLInputElement | HTMLSelectElement {
  return ui.settings.querySelector(`[name="${key}"]`) as HTMLInputElement | HTMLSelectElement;
}

/** The form's settings over the defaults, checked by the same schema as train.js's flags and --config files. */
function formSettings(): Partial<GrpoConfig> {
  const fromFields: Record<string, unknown> = {};
  for (const key of MAIN_SETTINGS) fromFields[key] = settingField(key).value.trim();
  checkSettings(GRPO_SETTINGS, fromFields, { coerce: true, name: (key) => `--${kebab(key)}` });
  const text = ui.moreSettings.value.trim();
  let more: Record<string, unknown> = {};
  if (text) {
    try {
      more = JSON.parse(text) as Record<string, unknown>;
    } catch (error) {
      throw new Error(`more settings: not valid JSON (${(error as Error).message})`);
    }
    if (typeof more !== 'object' || more === null || Array.isArray(more)) throw new Error('more settings: a JSON object of train.js --config settings');
    const byName = new Map(Object.keys(GRPO_SETTINGS).flatMap((key) => [[key, key], [kebab(key), key]] as const));
    more = Object.fromEntries(
      Object.entries(more).map(([name, value]) => {
        const key = byName.get(name);
        if (!key) throw new Error(`more settings: unknown setting "${name}"`);
        return [key, value];
      }),
    );
    checkSettings(GRPO_SETTINGS, more, { coerce: false, name: (key) => `more settings: "${key}"` });
  }
  const settings = { ...more, ...fromFields } as Partial<GrpoConfig>;
  if (settings.baseDtype === 'f16' && !adapterHasF16) {
    // The frozen base is the only f16 storage; without shader-f16 it stays f32.
    settings.baseDtype = 'f32';
    settingField('baseDtype').value = 'f32';
    ui.progress.textContent = 'this adapter has no shader-f16: the base model is kept in f32';
  }
  return settings;
}

/** Puts a saved run's settings into the form (a resumed run must use them). */
function showSettings(config: Record<string, unknown>): void {
  const more: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    if ((MAIN_SETTINGS as string[]).includes(key)) settingField(key).value = String(value);
    else if (!['model', 'task', 'rewardConfig', 'outDir', 'resume', 'overwrite'].includes(key) && JSON.stringify(value) !== JSON.stringify(DEFAULT_CONFIG[key as keyof GrpoConfig])) {
      more[key] = value;
    }
  }
  ui.moreSettings.value = Object.keys(more).length ? JSON.stringify(more) : '';
  const task = String(config.task);
  ui.task.value = BUILTIN_TASKS.includes(task) ? task : 'upload';
  ui.model.value = config.model === 'tiny' ? 'tiny' : 'files';
  ui.modelFilesBox.hidden = ui.model.value !== 'files';
  ui.taskFilesBox.hidden = ui.task.value !== 'upload';
}

async function runConfig(resume: boolean): Promise<GrpoConfig> {
  const model = ui.model.value === 'tiny' ? 'tiny' : await pickedModel();
  const task = ui.task.value === 'upload' ? await pickedTask() : { task: ui.task.value, rewardConfig: undefined };
  const config: GrpoConfig = { ...DEFAULT_CONFIG, ...formSettings(), model, ...task, outDir: RUN_DIR, resume, overwrite: !resume };
  return validateConfig(config);
}

// ---- the run

function metricText(m: StepMetrics, key: string, digits = 3): string {
  const v = m[key];
  return typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '–';
}

function progressLine(m: StepMetrics, steps: number, started: number, firstStep: number): string {
  const perStep = (performance.now() - started) / 1000 / Math.max(1, m.step - firstStep);
  const parts = [`step ${m.step}/${steps}`, `reward ${metricText(m, 'reward')}`];
  for (const key of Object.keys(m)) if (/^rewards\/.+\/mean$/.test(key)) parts.push(`${key.slice(8, -5)} ${metricText(m, key)}`);
  parts.push(`loss ${metricText(m, 'loss', 4)}`, `kl ${metricText(m, 'kl', 4)}`, `entropy ${metricText(m, 'entropy')}`, `len ${metricText(m, 'completions/mean_length', 1)}`);
  if (m['eval/reward'] !== undefined) parts.push(`held-out ${metricText(m, 'eval/reward')}`);
  parts.push(`${perStep.toFixed(1)} s/step`);
  return parts.join(' · ');
}

function showCurves(run: GrpoTrainer): void {
  run.log.plot();
  ui.curves.innerHTML = readFileSync(run.log.plotPath, 'utf8');
  ui.curves.classList.remove('note');
}

interface LoggedCompletion {
  step: number;
  prompt: string;
  completion: string;
  finish: string;
  reward: number;
  advantage: number;
  components: Record<string, { score: number; counted: boolean; reason: string }>;
}

function cell(row: HTMLTableRowElement, text: string, className?: string): void {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
}

function showSamples(path: string, step: number): void {
  if (!existsSync(path)) return;
  const rows = readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as LoggedCompletion)
    .filter((r) => r.step === step);
  const names = [...new Set(rows.flatMap((r) => Object.keys(r.components)))];
  const head = ui.samples.tHead!;
  head.innerHTML = '';
  const headRow = head.insertRow();
  for (const title of ['step', 'prompt', 'completion', 'finish', 'reward', 'advantage', ...names]) {
    const th = document.createElement('th');
    th.textContent = title;
    headRow.append(th);
  }
  const body = ui.samples.tBodies[0];
  body.innerHTML = '';
  for (const r of rows) {
    const row = body.insertRow();
    cell(row, String(r.step));
    cell(row, r.prompt, 'text');
    cell(row, r.completion, 'text');
    cell(row, r.finish);
    cell(row, r.reward.toFixed(3));
    cell(row, r.advantage.toFixed(3));
    for (const name of names) {
      const c = r.components[name];
      cell(row, c ? `${c.score.toFixed(3)}${c.counted ? '' : ' (not counted)'}${c.reason ? ` — ${c.reason}` : ''}` : '');
    }
  }
}

const downloadUrls: string[] = [];

function offer(name: string, bytes: Uint8Array, type: string): void {
  const url = URL.createObjectURL(new Blob([bytes as BlobPart], { type }));
  downloadUrls.push(url);
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  link.textContent = name;
  ui.downloads.append(link);
}

/** The newest checkpoint's adapter, the logs, and the whole run at that checkpoint as one archive. */
function showDownloads(): void {
  for (const url of downloadUrls.splice(0)) URL.revokeObjectURL(url);
  ui.downloads.textContent = '';
  const checkpoint = latestCheckpoint(RUN_DIR);
  if (checkpoint) {
    for (const file of ['adapter_model.safetensors', 'adapter_config.json']) {
      offer(file, readFileSync(join(checkpoint, file)), file.endsWith('.json') ? 'application/json' : 'application/octet-stream');
    }
  }
  for (const file of ['metrics.jsonl', 'completions.jsonl', 'curves.svg']) {
    const path = join(RUN_DIR, file);
    if (existsSync(path)) offer(file, readFileSync(path), file.endsWith('.svg') ? 'image/svg+xml' : 'application/jsonl');
  }
  if (checkpoint) {
    const name = basename(checkpoint);
    const entries = [
      ...readdirSync(checkpoint).map((file) => ({ path: `${name}/${file}`, bytes: readFileSync(join(checkpoint, file)) })),
      ...['metrics.jsonl', 'completions.jsonl'].filter((f) => existsSync(join(RUN_DIR, f))).map((f) => ({ path: f, bytes: readFileSync(join(RUN_DIR, f)) })),
    ];
    offer(`run-${name}.tar`, tarArchive(entries), 'application/x-tar');
  }
  if (!ui.downloads.childElementCount) ui.downloads.textContent = 'nothing saved yet';
}

const TUNED_KEY = (adapter: string) => `webgpu-rft matmul variants on ${adapter}`;

/**
 * Timing every matmul variant takes minutes on SwiftShader, so the page runs it only when asked
 * and remembers the winners per adapter in this browser; otherwise it makes the remembered winners
 * (or the adapter kind's defaults) current, which the trainer then takes as already tuned.
 */
function chooseMatmulKernels(gpu: Gpu): void {
  if (ui.tuneKernels.checked) return;
  const remembered = localStorage.getItem(TUNED_KEY(gpu.adapterName));
  restoreMatmulVariantChoices(gpu, remembered ? (JSON.parse(remembered) as Record<string, string>) : matmulVariantChoices(gpu));
}

async function train(resume: boolean): Promise<void> {
  clearError();
  let gpu: Gpu | undefined;
  stopPressed = false;
  setState('running');
  try {
    const config = await runConfig(resume);
    ui.progress.textContent = 'opening the WebGPU adapter';
    gpu = await Gpu.create();
    chooseMatmulKernels(gpu);
    const stage = (text: string) => (ui.progress.textContent = text);
    trainer = await GrpoTrainer.create(gpu, config, '/', new Set(Object.keys(config)), stage);
    const run = trainer;
    run.stopRequested = stopPressed;
    if (ui.tuneKernels.checked) localStorage.setItem(TUNED_KEY(gpu.adapterName), JSON.stringify(matmulVariantChoices(gpu)));
    const started = performance.now();
    const firstStep = run.step;
    if (firstStep) showCurves(run);
    // The last finished step's line, then what the step under way is doing.
    let finished = '';
    run.onProgress = (status) => (ui.progress.textContent = finished ? `${finished} — ${status}` : status);
    await run.train((m) => {
      finished = progressLine(m, config.steps, started, firstStep);
      ui.progress.textContent = finished;
      document.body.dataset.step = String(m.step);
      showCurves(run);
      showSamples(run.log.completionsPath, m.step);
      showDownloads();
    }, stage);
    if (finished) ui.progress.textContent = finished;
    const stopped = run.step < config.steps;
    if (!stopped) ui.progress.textContent += ' — done';
    else if (latestCheckpoint(RUN_DIR)) ui.progress.textContent += ` — stopped after step ${run.step}; Resume continues from its checkpoint`;
    else ui.progress.textContent = 'stopped before the first step: nothing saved';
    showCurves(run);
    showDownloads();
    setState(stopped ? 'stopped' : 'done');
  } catch (error) {
    showError(error);
    setState('failed');
  } finally {
    await trainer?.close().catch(showError);
    trainer = undefined;
    gpu?.destroy();
  }
}

/** A run archive from the Downloads (checkpoint, logs) becomes this page's run; Resume continues it. */
async function loadRunArchive(file: File): Promise<void> {
  clearError();
  const entries = readTarArchive(new Uint8Array(await file.arrayBuffer()), file.name);
  const states = entries.filter((e) => /^checkpoint-\d+\/trainer_state\.json$/.test(e.path));
  if (states.length !== 1) throw new Error(`${file.name}: expected one checkpoint-N/trainer_state.json, found ${states.length} (download the run archive from this page)`);
  rmSync(RUN_DIR, { recursive: true, force: true });
  for (const entry of entries) {
    if (entry.path.split('/').includes('..')) throw new Error(`${file.name}: refusing the path ${entry.path}`);
    mkdirSync(dirname(join(RUN_DIR, entry.path)), { recursive: true });
    writeFileSync(join(RUN_DIR, entry.path), entry.bytes);
  }
  const state = JSON.parse(new TextDecoder().decode(states[0].bytes)) as { step: number; config: Record<string, unknown> };
  showSettings(state.config);
  const model = String(state.config.model);
  const needsFiles = model !== 'tiny' ? ` Pick the model's files again (${model}).` : '';
  const task = String(state.config.task);
  const needsTask = BUILTIN_TASKS.includes(task) ? '' : ` Pick the task's files again (${basename(task)} and its reward config).`;
  ui.progress.textContent = `loaded ${basename(dirname(states[0].path))} (step ${state.step}) from ${file.name}; press Resume to continue.${needsFiles}${needsTask}`;
  if (existsSync(join(RUN_DIR, 'metrics.jsonl'))) showDownloads();
}

async function main(): Promise<void> {
  buildSettingsForm();
  ui.model.onchange = () => (ui.modelFilesBox.hidden = ui.model.value !== 'files');
  ui.task.onchange = () => (ui.taskFilesBox.hidden = ui.task.value !== 'upload');
  ui.start.onclick = () => void train(false);
  ui.resume.onclick = () => void train(true);
  ui.stop.onclick = () => {
    stopPressed = true;
    if (trainer) trainer.stopRequested = true;
    ui.progress.textContent += ' — stopping after this step (it saves a checkpoint)';
  };
  ui.resumeFile.onchange = () => {
    const file = ui.resumeFile.files?.[0];
    if (file) void loadRunArchive(file).then(() => setState('ready'), (error) => (showError(error), setState('failed')));
  };
  if (!('gpu' in navigator) || !navigator.gpu) {
    ui.adapter.textContent = 'no WebGPU';
    showError(new Error(NO_WEBGPU_HELP));
    setState('unavailable');
    return;
  }
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    ui.adapter.textContent = 'no WebGPU adapter';
    showError(new Error('The browser has WebGPU but offers no adapter (GPU blocklisted or disabled). In Chrome see chrome://gpu; on Linux start Chromium with --enable-unsafe-webgpu.'));
    setState('unavailable');
    return;
  }
  adapterHasF16 = adapter.features.has('shader-f16');
  const info = adapter.info;
  ui.adapter.textContent = `adapter: ${[info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ') || 'unnamed'}; ` +
    `largest storage binding ${(adapter.limits.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB; ` +
    (adapterHasF16 ? 'shader-f16' : 'no shader-f16 (the base model stays f32)');
  ui.progress.textContent = 'loading the bundled model and task data…';
  await loadVolume();
  ui.progress.textContent = 'ready: pick a model and a task, then Start';
  setState('ready');
}

main().catch((error) => {
  showError(error);
  setState('failed');
});
