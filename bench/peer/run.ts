/**
 * The peer benchmark: one GRPO step of this project and then the same step in TRL (GRPOTrainer +
 * PEFT, torch on the CPU), back to back on this machine, with generation / training / step for
 * both, their ratios and the token counts that make them comparable.
 *   npm run bench:peer [-- --prompts 8 --generations 4 --new 128 --micro 4 --task arithmetic --threads N]
 *        [--base-dtype f32|f16] [--recompute auto|on|off] [--max-memory GiB] [--pool-cap MiB|none]
 *        [--trim-between-phases on|off] [--suballocation on|off] [--generation-batch N]
 *        [--zero-advantage-completions skip|train] [--rollout-projections auto|reuse|recompute]
 *        [--trl-gradient-checkpointing] [--warmup] [--rounds N]
 * Same work on both sides: SmolLM2-135M-Instruct in f32 (the project dequantises the GGUF when it
 * loads it; TRL trains a plain f32 checkpoint dequantised from the same GGUF, written once to
 * .cache/peer/), LoRA on q,k,v,o,gate,up,down, the prompts of the project's first step (TRL checks
 * that its tokenisation gives the same ids), the project's sampling and loss settings, and the
 * project's grader scoring TRL's completions. Sampling differs, so completion lengths differ a
 * little; both are printed. `--base-dtype f16` times the project with its CPU default (the frozen
 * base in f16; TRL stays f32), f32 (the default here) keeps the work the same on both sides.
 * The memory flags go to the project's half as they are (bench/grpo-step.ts); without them it runs
 * with the trainer's memory defaults. So does `--zero-advantage-completions`: TRL always computes
 * completions whose advantage is 0, the project leaves them out by default (`train` computes them too).
 * And `--rollout-projections`: TRL's training forward runs every product again, the project's reads
 * the products its sampling forwards ran with the same weights by default (`recompute` runs them again). `--trl-gradient-checkpointing` turns TRL's activation
 * recomputation on (its GRPOConfig default; off here so that neither side recomputes unless asked).
 * Both halves report the peak resident set of their whole process (getrusage). `--warmup` times
 * each side's step in a process that has already run that same step once (a throwaway trainer,
 * same seed, so the same rollout): the steady state of a run of many steps, without what only a
 * process's first step costs (on lavapipe, pipeline creation; in torch, its own first-use costs).
 * `--rounds N` runs the two halves N times, alternating, and prints each round and the medians: on a
 * shared machine one run's ratio moves with the hour. Each half's share of the CPU time stolen by
 * other tenants (Linux /proc/stat) is printed with it.
 * Needs the Python venv (scripts/setup.sh).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveModel } from '../../src/io/model-registry.js';
import { repositoryRoot } from '../../src/io/repository-root.js';
import type { GrpoConfig } from '../../src/rl/grpo-config.js';
import { benchArgs } from '../args.js';
import { ROLLOUT_OPTIONS } from '../rollout-options.js';

const args = benchArgs(import.meta.url, {
  ...ROLLOUT_OPTIONS,
  micro: { type: 'string', default: '4' },
  'base-dtype': { type: 'string', default: 'f32' },
  threads: { type: 'string', default: String(cpus().length) },
  recompute: { type: 'string' },
  'max-memory': { type: 'string' },
  'pool-cap': { type: 'string' },
  'trim-between-phases': { type: 'string' },
  suballocation: { type: 'string' },
  'generation-batch': { type: 'string' },
  'zero-advantage-completions': { type: 'string' },
  'rollout-projections': { type: 'string' },
  'trl-gradient-checkpointing': { type: 'boolean', default: false },
  warmup: { type: 'boolean', default: false },
  rounds: { type: 'string', default: '1' },
});
const rounds = Number(args.rounds);
if (!(Number.isInteger(rounds) && rounds >= 1)) throw new Error(`--rounds: expected a whole number ≥ 1, got '${args.rounds}'`);

interface ProjectStep {
  adapter: string;
  settings: GrpoConfig;
  step_s: number;
  generation_s: number;
  reward_s: number;
  train_s: number;
  optimizer_s: number;
  completion_tokens: number;
  trained_tokens: number;
  mean_completion_length: number;
  peak_rss_mib: number;
  /** Seconds of the untimed warm-up step (--warmup), else null. */
  warmup_s: number | null;
  /** Lines of /proc/self/maps at the end of the step (NaN off Linux); the limit is vm.max_map_count. */
  mappings: number;
  prompts: { messages: unknown[]; prompt_ids: number[]; example: unknown }[];
}

interface TrlStep {
  torch: string;
  threads: number;
  gradient_checkpointing: boolean;
  warmup_s: number | null;
  step_s: number;
  generation_s: number;
  reward_s: number;
  rollout_other_s: number;
  train_s: number;
  completion_tokens: number;
  trained_tokens: number;
  mean_completion_length: number;
  peak_rss_mib: number;
}

const PROJECT_FLAGS = ['recompute', 'max-memory', 'pool-cap', 'trim-between-phases', 'suballocation', 'generation-batch', 'zero-advantage-completions', 'rollout-projections'] as const;
const projectFlags = PROJECT_FLAGS.flatMap((flag) => (args[flag] === undefined ? [] : [`--${flag}`, args[flag]!]));
const root = repositoryRoot();
const work = mkdtempSync(join(tmpdir(), 'bench-peer-'));
const small = resolveModel('small');
if (small.weights.format !== 'gguf') throw new Error('the peer benchmark expects the `small` model as a GGUF file');
const ggufPath = small.weights.path;

function run(command: string, argv: string[]): void {
  const result = spawnSync(command, argv, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`${command} ${argv.join(' ')} failed (exit ${result.status ?? result.signal})`);
}

const lscpu = spawnSync('lscpu', [], { encoding: 'utf8' }).stdout ?? '';
const cpuModel = /^Model name:\s*(.+)$/m.exec(lscpu)?.[1] ?? cpus()[0]?.model ?? 'unknown CPU';
const loadBefore = loadavg();
const started = new Date();

/** CPU time counters of the whole machine (Linux), to tell how much of a half other tenants took. */
function cpuTimes(): { steal: number; total: number } | null {
  if (!existsSync('/proc/stat')) return null;
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  return { steal: fields[7] ?? 0, total: fields.reduce((a, b) => a + b, 0) };
}

/** Runs `half` and returns its result with the share of the machine's CPU time stolen meanwhile (NaN off Linux). */
function withSteal<T>(half: () => T): [T, number] {
  const before = cpuTimes();
  const result = half();
  const after = cpuTimes();
  return [result, before && after ? (after.steal - before.steal) / Math.max(1, after.total - before.total) : Number.NaN];
}

function runProject(round: number): ProjectStep {
  console.log(`== this project${rounds > 1 ? `, round ${round}` : ''}`);
  const projectJson = join(work, `project-${round}.json`);
  run(process.execPath, [
    join(root, 'dist', 'bench', 'grpo-step.js'),
    ...['--model', 'small', '--task', args.task!, '--prompts', args.prompts!, '--generations', args.generations!],
    ...['--new', args.new!, '--micro', args.micro!, '--base-dtype', args['base-dtype']!, '--steps', '1', '--skip-profile', '--json', projectJson],
    ...projectFlags,
    ...(args.warmup ? ['--warmup'] : []),
  ]);
  return JSON.parse(readFileSync(projectJson, 'utf8')) as ProjectStep;
}

function runTrl(round: number, s: GrpoConfig, prompts: ProjectStep['prompts']): TrlStep {
  console.log(`\n== TRL${rounds > 1 ? `, round ${round}` : ''}`);
  const casePath = join(work, 'case.json');
  writeFileSync(
    casePath,
    JSON.stringify({
      prompts,
      num_generations: s.numGenerations,
      max_new_tokens: s.maxNewTokens,
      micro_batch_size: s.microBatchSize,
      temperature: s.temperature,
      top_p: s.topP,
      top_k: s.topK,
      beta: s.beta,
      epsilon: s.epsilon,
      loss_type: s.lossType,
      scale_rewards: s.scaleRewards,
      learning_rate: s.learningRate,
      adam_betas: s.adamBetas,
      weight_decay: s.weightDecay,
      max_grad_norm: s.maxGradNorm,
      lora: { r: s.loraRank, alpha: s.loraAlpha, dropout: s.loraDropout, targets: s.loraTargets },
      score_command: [process.execPath, join(root, 'dist', 'src', 'cli', 'score.js'), '--config', s.task, '--input'],
    }),
  );
  const python = spawnSync(
    join(root, '.venv', 'bin', 'python'),
    [join(root, 'bench', 'peer', 'trl_grpo_step.py'), '--case', casePath, '--model-dir', join(root, '.cache', 'peer', 'smollm2-135m-f32'), '--gguf', ggufPath, '--threads', args.threads!, ...(args['trl-gradient-checkpointing'] ? ['--gradient-checkpointing'] : []), ...(args.warmup ? ['--warmup'] : [])],
    { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' },
  );
  if (python.status !== 0) throw new Error(`bench/peer/trl_grpo_step.py failed (exit ${python.status ?? python.signal})`);
  return JSON.parse(python.stdout.trim().split('\n').at(-1)!) as TrlStep;
}

const results: { project: ProjectStep; trl: TrlStep; projectSteal: number; trlSteal: number }[] = [];
const loadBetween: number[] = [];
for (let round = 1; round <= rounds; round++) {
  const [project, projectSteal] = withSteal(() => runProject(round));
  loadBetween.push(loadavg()[0]);
  // TRL samples the prompts of the project's first step (the same ids, checked by the TRL script).
  const [trl, trlSteal] = withSteal(() => runTrl(round, project.settings, (results[0]?.project ?? project).prompts));
  results.push({ project, trl, projectSteal, trlSteal });
  // Each round as it ends, so a long run that is cut short still leaves its rounds.
  if (rounds > 1) console.log(`\nround ${round}: step ${project.step_s.toFixed(1)} s against TRL's ${trl.step_s.toFixed(1)} s (${(project.step_s / trl.step_s).toFixed(2)}×)\n`);
}
const { project, trl } = results[results.length - 1];
const s = project.settings;
const loadAfter = loadavg();

const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
/** The table's rows: project and TRL seconds, the median over the rounds. */
const split = (ours: (p: ProjectStep) => number, theirs: (t: TrlStep) => number): [number, number] => [median(results.map((r) => ours(r.project))), median(results.map((r) => theirs(r.trl)))];
const projectTrainOf = (p: ProjectStep) => p.train_s + p.optimizer_s;
const rows: [string, number, number][] = [
  ['generation', ...split((p) => p.generation_s, (t) => t.generation_s)],
  ['reward', ...split((p) => p.reward_s, (t) => t.reward_s)],
  ['other rollout work', 0, median(results.map((r) => r.trl.rollout_other_s))],
  ['forward/backward + optimizer', ...split(projectTrainOf, (t) => t.train_s)],
  ['step', ...split((p) => p.step_s, (t) => t.step_s)],
];
const cell = (x: number) => `${x.toFixed(1)} s`.padStart(10);
console.log(`\n${args.prompts} prompts × ${args.generations} completions × ≤ ${args.new} new tokens, micro-batch ${args.micro}, task ${args.task}, SmolLM2-135M-Instruct (frozen base: project ${args['base-dtype']}, TRL f32), LoRA r ${s.loraRank}`);
console.log(`machine: ${cpuModel}, ${cpus().length} logical CPUs; load average ${loadBefore[0].toFixed(1)} before, ${loadBetween.map((l) => l.toFixed(1)).join(', ')} between the halves, ${loadAfter[0].toFixed(1)} after; started ${started.toISOString()}`);
console.log(`this project: ${project.adapter}${projectFlags.length ? `, ${projectFlags.join(' ')}` : ''}; TRL: torch ${trl.torch}, ${trl.threads} threads, activation recomputation ${trl.gradient_checkpointing ? 'on' : 'off'}`);
const warmups = project.warmup_s !== null && trl.warmup_s !== null ? `after an untimed warm-up of the same step (project ${project.warmup_s.toFixed(1)} s, TRL ${trl.warmup_s.toFixed(1)} s)` : "in a process's first step (pipeline creation and other first-use costs included; --warmup times a second run)";
console.log(`timed: ${warmups}\n`);
const percent = (share: number) => (Number.isNaN(share) ? '–' : `${(100 * share).toFixed(0)} %`);
if (rounds > 1) {
  console.log('round   project step (generation + training)   TRL step (generation + training)   project / TRL   CPU stolen (project, TRL)');
  results.forEach((r, i) => {
    const halves = (step: number, generation: number, train: number) => `${step.toFixed(1)} s (${generation.toFixed(1)} + ${train.toFixed(1)})`.padEnd(36);
    console.log(`${String(i + 1).padEnd(8)}${halves(r.project.step_s, r.project.generation_s, projectTrainOf(r.project))}  ${halves(r.trl.step_s, r.trl.generation_s, r.trl.train_s)} ${`${(r.project.step_s / r.trl.step_s).toFixed(2)}×`.padEnd(15)} ${percent(r.projectSteal)}, ${percent(r.trlSteal)}`);
  });
  console.log(`\nmedians over ${rounds} rounds (the ratios are of the medians):`);
} else {
  console.log(`CPU stolen by other tenants: ${percent(results[0].projectSteal)} during the project's half, ${percent(results[0].trlSteal)} during TRL's\n`);
}
console.log(`${''.padEnd(30)} ${'project'.padStart(10)} ${'TRL'.padStart(10)}   project / TRL`);
for (const [label, ours, theirs] of rows) {
  console.log(`${label.padEnd(30)} ${cell(ours)} ${cell(theirs)}   ${theirs > 0 && ours > 0 ? `${(ours / theirs).toFixed(2)}×` : '–'}`);
}
console.log(`${'completion tokens'.padEnd(30)} ${project.completion_tokens.toFixed(0).padStart(10)} ${trl.completion_tokens.toFixed(0).padStart(10)}   (mean length ${project.mean_completion_length.toFixed(1)} / ${trl.mean_completion_length.toFixed(1)})`);
console.log(`${'trained tokens'.padEnd(30)} ${project.trained_tokens.toFixed(0).padStart(10)} ${trl.trained_tokens.toFixed(0).padStart(10)}`);
console.log(`${'memory mappings (project)'.padEnd(30)} ${String(project.mappings).padStart(10)}`);
const [projectRss, trlRss] = [Math.max(...results.map((r) => r.project.peak_rss_mib)), Math.max(...results.map((r) => r.trl.peak_rss_mib))];
console.log(`${'peak RSS of the process'.padEnd(30)} ${`${(projectRss / 1024).toFixed(2)} GiB`.padStart(10)} ${`${(trlRss / 1024).toFixed(2)} GiB`.padStart(10)}   ${(projectRss / trlRss).toFixed(2)}×`);
// Milliseconds per token; none when nothing was trained (every completion's advantage 0, left out).
const perToken = (x: number, tokens: number, digits: number) => (tokens > 0 ? ((1000 * x) / tokens).toFixed(digits) : '–');
console.log(
  `per token: generation ${perToken(rows[0][1], project.completion_tokens, 0)} / ${perToken(rows[0][2], trl.completion_tokens, 0)} ms per completion token, ` +
    `training ${perToken(rows[3][1], project.trained_tokens, 1)} / ${perToken(rows[3][2], trl.trained_tokens, 1)} ms per trained token (project / TRL)`,
);
