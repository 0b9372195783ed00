import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chartSvg, trailingMean, type Panel, type Series } from '../report/svg-chart.js';
import { HACKS_MARKER } from '../rewards/graders/triton.js';
import { RunLog, type MetricsRow } from '../rl/run-log.js';
import { readArmRecord, trainSetting, type Arm, type ArmRecord, type Experiment } from './experiment.js';

/** Steps averaged in the training-reward curves and the "last steps" column: one step's mean over a few samples is noisy. */
const LAST_STEPS = 5;
/** Where the collector writes the results into an experiment's README (everything between is replaced). */
export const RESULTS_BEGIN = '<!-- results: written by `npm run experiment -- NAME --collect`; edits between these lines are overwritten -->';
export const RESULTS_END = '<!-- end of results -->';

/** What one arm's run shows. Undefined numbers are metrics the run does not have (yet). */
export interface ArmSummary {
  readonly arm: Arm;
  readonly record: ArmRecord | null;
  readonly rows: readonly MetricsRow[];
  readonly lastStep: number;
  readonly plannedSteps: number;
  readonly evalPassAtStart?: number;
  readonly evalRewardAtStart?: number;
  readonly evalPassFinal?: number;
  readonly evalRewardFinal?: number;
  /** Mean reward of the first step's samples: the base policy's, before any update. */
  readonly sampledRewardFirst?: number;
  /** Mean training reward over the last steps. */
  readonly sampledRewardLast?: number;
  /** Wall time of every attempt, in minutes. */
  readonly wallMinutes?: number;
  /** Logged completions per step in which the Triton runner found reward hacking (empty when none was ever found). */
  readonly hacksPerStep: readonly (readonly [number, number])[];
  /** The logged completions with the highest and the lowest reward. */
  readonly best?: LoggedCompletion;
  readonly worst?: LoggedCompletion;
  /** The last held-out evaluation's greedy completions with the highest and the lowest reward. */
  readonly heldOutBest?: LoggedCompletion;
  readonly heldOutWorst?: LoggedCompletion;
}

/** A row of a run's completions.jsonl (the fields the collector reads). */
export interface LoggedCompletion {
  readonly step: number;
  readonly prompt: string;
  readonly completion: string;
  readonly reward: number;
  readonly components: Readonly<Record<string, { readonly score: number; readonly reason: string }>>;
}

function numbers(rows: readonly MetricsRow[], key: string): [number, number][] {
  return rows.filter((r) => typeof r[key] === 'number' && Number.isFinite(r[key])).map((r) => [Number(r.step), Number(r[key])]);
}

/** A run's completions.jsonl (sampled) or eval-completions.jsonl (held-out, greedy). */
function readCompletions(runDir: string, file: 'completions.jsonl' | 'eval-completions.jsonl'): LoggedCompletion[] {
  const path = join(runDir, file);
  if (!existsSync(path)) return [];
  const lines = readFileSync(path, 'utf8').split('\n').filter((line) => line.trim());
  return lines.flatMap((line, i) => {
    try {
      return [JSON.parse(line) as LoggedCompletion];
    } catch (error) {
      // A run being written (or killed while writing) may end in a torn line; anywhere else it is damage.
      if (i === lines.length - 1) return [];
      throw new Error(`${path}: line ${i + 1} is not valid JSON (${(error as Error).message})`);
    }
  });
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * `startEvaluation`: the held-out evaluation of the untouched model (the experiment's arm of 0
 * steps), the step 0 of an arm that skipped its own (skipEvalAtStart) — the same model whatever the
 * seed, since LoRA starts as the identity.
 */
export function summarizeArm(arm: Arm, startEvaluation?: MetricsRow): ArmSummary {
  // A torn last line (a run killed while logging) is dropped quietly: the trainer drops it too when it resumes.
  const logged = existsSync(arm.runDir) ? new RunLog(arm.runDir, () => {}).readMetrics() : [];
  const rows = startEvaluation && arm.settings.skipEvalAtStart === true && logged.length && !logged.some((r) => r.step === 0) ? [startEvaluation, ...logged] : logged;
  const record = readArmRecord(arm);
  const at = (key: string, pick: 'first' | 'last') => {
    const points = numbers(rows, key);
    const point = pick === 'first' ? points[0] : points[points.length - 1];
    return point && (pick === 'last' || point[0] === 0) ? point[1] : undefined;
  };
  const completions = readCompletions(arm.runDir, 'completions.jsonl');
  const evaluated = readCompletions(arm.runDir, 'eval-completions.jsonl');
  const lastEvaluation = byRewardDescending(evaluated.filter((c) => c.step === Math.max(...evaluated.map((e) => e.step))));
  const hacked = new Map<number, number>();
  for (const c of completions) {
    hacked.set(c.step, (hacked.get(c.step) ?? 0) + (Object.values(c.components).some((v) => v.reason.includes(HACKS_MARKER)) ? 1 : 0));
  }
  const byReward = byRewardDescending(completions);
  const rewards = numbers(rows, 'reward');
  const lastRewards = rewards.slice(-LAST_STEPS).map(([, y]) => y);
  return {
    arm,
    record,
    rows,
    lastStep: Math.max(0, ...rows.map((r) => Number(r.step))),
    plannedSteps: arm.command === 'train' ? trainSetting(arm, 'steps') : Number(arm.settings.steps),
    evalPassAtStart: at('eval/pass@1', 'first'),
    evalRewardAtStart: at('eval/reward', 'first'),
    evalPassFinal: at('eval/pass@1', 'last'),
    evalRewardFinal: at('eval/reward', 'last'),
    sampledRewardFirst: rewards[0]?.[0] === 1 ? rewards[0][1] : undefined,
    sampledRewardLast: lastRewards.length ? mean(lastRewards) : undefined,
    wallMinutes: record ? record.attempts.reduce((sum, a) => sum + a.seconds, 0) / 60 : undefined,
    hacksPerStep: [...hacked.values()].some((n) => n > 0) ? [...hacked].sort(([a], [b]) => a - b) : [],
    best: byReward[0],
    worst: byReward[byReward.length - 1],
    heldOutBest: lastEvaluation[0],
    heldOutWorst: lastEvaluation[lastEvaluation.length - 1],
  };
}

/** The experiment's finished arm of 0 training steps (the untouched model's evaluation) and its row, when it has exactly one. */
function startEvaluation(experiment: Experiment): { arm: string; row: MetricsRow } | undefined {
  const evaluations = experiment.arms.filter((arm) => arm.command === 'train' && trainSetting(arm, 'steps') === 0 && readArmRecord(arm)?.finished);
  if (evaluations.length !== 1) return undefined;
  const row = new RunLog(evaluations[0].runDir, () => {}).readMetrics().find((r) => r.step === 0);
  return row && { arm: evaluations[0].name, row };
}

/** Highest reward first; ties go to the later step. */
function byRewardDescending(completions: readonly LoggedCompletion[]): LoggedCompletion[] {
  return [...completions].sort((a, b) => b.reward - a.reward || b.step - a.step);
}

/** The compute an arm is given, in words: what a row of the table is comparable on. */
export function armBudget(arm: Arm): string {
  if (arm.command === 'sft') return `${arm.settings.steps} steps × ${arm.settings.batch} labelled sequences`;
  const steps = trainSetting(arm, 'steps');
  if (steps === 0) return `held-out evaluation only (≤ ${trainSetting(arm, 'maxNewTokens')} tokens)`;
  const prompts = trainSetting(arm, 'promptsPerStep');
  const generations = trainSetting(arm, 'numGenerations');
  return `${steps} steps × ${prompts} prompts × ${generations} samples ≤ ${trainSetting(arm, 'maxNewTokens')} tokens`;
}

/** Mean ± sample standard deviation (n − 1) of the values present, with how many there were. */
export function meanStd(values: readonly (number | undefined)[]): string {
  const xs = values.filter((v): v is number => v !== undefined);
  if (!xs.length) return '—';
  const m = mean(xs);
  if (xs.length === 1) return `${m.toFixed(3)} (n=1)`;
  const std = Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1));
  return `${m.toFixed(3)} ± ${std.toFixed(3)}`;
}

function groups(summaries: readonly ArmSummary[]): Map<string, ArmSummary[]> {
  const byGroup = new Map<string, ArmSummary[]>();
  for (const s of summaries) byGroup.set(s.arm.group, [...(byGroup.get(s.arm.group) ?? []), s]);
  return byGroup;
}

/**
 * The results in Markdown: one row per group of seeds, over its finished arms only (mean ± std),
 * then every arm's state, so a partly run experiment says exactly what is missing.
 */
export function resultsMarkdown(experiment: Experiment, summaries: readonly ArmSummary[], startArm?: string): string {
  const lines = [
    '| arms | finished | compute per arm | wall min (mean) | held-out pass@1, step 0 | held-out pass@1, end | held-out reward, step 0 | held-out reward, end | sampled reward, step 1 | sampled reward, last 5 steps |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const [group, members] of groups(summaries)) {
    const done = members.filter((s) => s.record?.finished);
    const column = (pick: (s: ArmSummary) => number | undefined) => meanStd(done.map(pick));
    lines.push(
      `| ${group} | ${done.length}/${members.length} | ${armBudget(members[0].arm)} | ${done.length ? mean(done.map((s) => s.wallMinutes ?? 0)).toFixed(1) : '—'} | ` +
        [column((s) => s.evalPassAtStart), column((s) => s.evalPassFinal), column((s) => s.evalRewardAtStart), column((s) => s.evalRewardFinal), column((s) => s.sampledRewardFirst), column((s) => s.sampledRewardLast)].join(' | ') +
        ' |',
    );
  }
  lines.push('', '| arm | state | steps logged | attempts | wall min | load average (1 min: mean, max / CPUs) | commit |', '|---|---|---|---|---|---|---|');
  for (const s of summaries) {
    const state = s.record?.finished ? 'finished' : s.rows.length ? 'interrupted or running' : 'not run yet';
    const attempts = s.record?.attempts ?? [];
    const loads = attempts.map((a) => (a.load ? `${a.load.mean.toFixed(1)}, ${a.load.max.toFixed(1)} / ${a.load.cpus}` : '—'));
    const commits = [...new Set(attempts.map((a) => a.commit?.replace(/^([0-9a-f]{10})[0-9a-f]*/, '$1') ?? '—'))];
    lines.push(
      `| ${s.arm.name} | ${state} | ${s.lastStep}/${s.plannedSteps} | ${attempts.length} | ${s.wallMinutes === undefined ? '—' : s.wallMinutes.toFixed(1)} | ` +
        `${loads.join('; ') || '—'} | ${commits.join(', ') || '—'} |`,
    );
  }
  const missing = summaries.filter((s) => !s.record?.finished).map((s) => s.arm.name);
  if (startArm && summaries.some((s) => s.arm.settings.skipEvalAtStart === true)) {
    lines.push('', `Step 0 of the arms that skip their own evaluation of the untouched model (\`skipEvalAtStart\`) is the \`${startArm}\` arm's.`);
  }
  lines.push(
    '',
    missing.length
      ? `Not finished: ${missing.join(', ')}. Means above are over finished arms only; \`npm run experiment -- ${experiment.name}\` runs (or resumes) the rest.`
      : 'Every arm finished.',
  );
  return lines.join('\n') + '\n';
}

/** The best and the worst logged completion of each arm, with every reward component's reason. */
export function samplesMarkdown(summaries: readonly ArmSummary[]): string {
  const fence = (text: string) => '````\n' + text.replace(/`{4,}/g, (m) => m.replace(/`/g, "'")) + '\n````';
  const sample = (label: string, c: LoggedCompletion) =>
    [
      `**${label}** (step ${c.step}, reward ${c.reward.toFixed(3)}): ${Object.entries(c.components).map(([name, v]) => `${name} ${v.score} (${v.reason})`).join('; ')}`,
      '',
      fence(c.completion),
    ].join('\n');
  const prompt = (c: LoggedCompletion) => (c.prompt.length > 300 ? c.prompt.slice(0, 300) + '…' : c.prompt);
  const parts = [
    '# Best and worst logged completions',
    '',
    "From each run's completions.jsonl (the sampled completions the trainer logged per step) and eval-completions.jsonl (the greedy completions of its last held-out evaluation), highest reward first; ties go to the later step.",
  ];
  for (const s of summaries) {
    if (!s.best && !s.heldOutBest) continue;
    parts.push('', `## ${s.arm.name}${s.record?.finished ? '' : ' (unfinished)'}`);
    if (s.best && s.worst) parts.push('', `Sampled. Prompt of the best: ${prompt(s.best)}`, '', sample('best', s.best), '', sample('worst', s.worst));
    if (s.heldOutBest && s.heldOutWorst) {
      parts.push('', `Held-out, greedy, after step ${s.heldOutBest.step}. Prompt of the best: ${prompt(s.heldOutBest)}`, '', sample('best held-out', s.heldOutBest), '', `Prompt of the worst: ${prompt(s.heldOutWorst)}`, '', sample('worst held-out', s.heldOutWorst));
    }
  }
  return parts.join('\n') + '\n';
}

/** A group's curve: the mean over its finished arms at each step, shaded from min to max. */
function groupSeries(group: string, members: readonly ArmSummary[], points: (s: ArmSummary) => Series['points']): Series | null {
  const perArm = members.filter((s) => s.record?.finished).map(points).filter((p) => p.length);
  if (!perArm.length) return null;
  const steps = [...new Set(perArm.flatMap((p) => p.map(([x]) => x)))].sort((a, b) => a - b);
  const line: [number, number][] = [];
  const band: [number, number, number][] = [];
  for (const x of steps) {
    const ys = perArm.flatMap((p) => p.filter(([px]) => px === x).map(([, y]) => y));
    line.push([x, mean(ys)]);
    band.push([x, Math.min(...ys), Math.max(...ys)]);
  }
  return { name: `${group} (${perArm.length} run${perArm.length > 1 ? 's' : ''})`, points: line, ...(perArm.length > 1 ? { band } : {}) };
}

/** Every group's curves of the metrics the runs have (one colour per group): training reward and its components, held-out, loss. */
export function resultsPanels(summaries: readonly ArmSummary[]): Panel[] {
  const byGroup = [...groups(summaries)];
  const keys = [...new Set(summaries.flatMap((s) => s.rows.flatMap((r) => Object.keys(r))))];
  const panel = (title: string, points: (s: ArmSummary) => Series['points']): Panel => ({
    title,
    series: byGroup.flatMap(([group, members], colorIndex) => {
      const series = groupSeries(group, members, points);
      return series ? [{ ...series, colorIndex }] : [];
    }),
  });
  const trend = (key: string) => (s: ArmSummary) => trailingMean(numbers(s.rows, key), LAST_STEPS);
  const panels = [panel(`training reward (mean of ${LAST_STEPS} steps)`, trend('reward'))];
  for (const key of keys.filter((k) => /^rewards\/.+\/mean$/.test(k)).sort()) panels.push(panel(`training ${key.slice(8, -5)} (mean of ${LAST_STEPS} steps)`, trend(key)));
  if (summaries.some((s) => s.hacksPerStep.length)) panels.push(panel('completions with reward hacks found, per step', (s) => s.hacksPerStep));
  panels.push(panel('held-out pass@1 (greedy)', (s) => numbers(s.rows, 'eval/pass@1')));
  panels.push(panel('held-out reward (greedy)', (s) => numbers(s.rows, 'eval/reward')));
  for (const key of keys.filter((k) => /^eval\/rewards\/.+\/mean$/.test(k)).sort()) panels.push(panel(`held-out ${key.slice(13, -5)}`, (s) => numbers(s.rows, key)));
  panels.push(panel('loss', (s) => numbers(s.rows, 'loss')));
  return panels;
}

/**
 * Rebuilds an experiment's results from its runs' logs: `results.md` (the table), `curves.svg` (mean
 * and min–max band over seeds), `samples.md` (best and worst completions), and the README's results block.
 */
export function collect(experiment: Experiment): { markdown: string; files: string[] } {
  const start = startEvaluation(experiment);
  const summaries = experiment.arms.map((arm) => summarizeArm(arm, start?.row));
  const markdown = resultsMarkdown(experiment, summaries, start?.arm);
  const resultsPath = join(experiment.dir, 'results.md');
  const plotPath = join(experiment.dir, 'curves.svg');
  writeFileSync(resultsPath, markdown);
  writeFileSync(plotPath, chartSvg(resultsPanels(summaries)));
  const samplesPath = join(experiment.dir, 'samples.md');
  writeFileSync(samplesPath, samplesMarkdown(summaries));
  const files = [resultsPath, plotPath, samplesPath];
  const readme = join(experiment.dir, 'README.md');
  if (existsSync(readme)) {
    const text = readFileSync(readme, 'utf8');
    const begin = text.indexOf(RESULTS_BEGIN.replace('NAME', experiment.name));
    const end = text.indexOf(RESULTS_END);
    if (begin >= 0 && end > begin) {
      const head = text.slice(0, begin + RESULTS_BEGIN.replace('NAME', experiment.name).length);
      writeFileSync(readme, `${head}\n\n${markdown}\n${text.slice(end)}`);
      files.push(readme);
    }
  }
  return { markdown, files };
}
