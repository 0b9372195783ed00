import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { collect, RESULTS_BEGIN, RESULTS_END, resultsPanels, summarizeArm } from '../src/experiments/collect.js';
import { readArmRecord, readExperiment, selectArms, type Arm } from '../src/experiments/experiment.js';
import { runArms, settingsFlags } from '../src/experiments/run-arms.js';
import { HACKS_MARKER } from '../src/rewards/graders/triton.js';
import { REPO_ROOT } from './python/run-python.js';
import { metrics, newDir, prepareTinyRun, runNode, TRAIN, type TinyRun } from './helpers/train-cli.js';

function writeArm(experimentsDir: string, experiment: string, arm: string, config: unknown): void {
  const dir = join(experimentsDir, experiment, 'arms');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${arm}.json`), JSON.stringify(config));
}

const row = (values: Record<string, number>) => JSON.stringify(values) + '\n';

describe('experiment arms (config files)', () => {
  it('refuses a bad arm before anything runs, naming the file and the key', () => {
    const dir = newDir('arms-');
    const cases: [unknown, string][] = [
      [{ command: 'rl', settings: {} }, '"command" must be one of train, sft, got "rl"'],
      [{ command: 'train', settings: { outDir: 'x' } }, '"settings" must not set outDir'],
      [{ command: 'train', settings: { steps: 'ten' } }, '"settings.steps" must be integer, got "ten"'],
      [{ command: 'train', settings: {}, notes: 'x' }, 'unknown key "notes"'],
      [{ command: 'sft', settings: { steps: 3 } }, 'an sft arm states "settings.batch"'],
    ];
    cases.forEach(([config, message], i) => {
      writeArm(dir, `bad${i}`, 'a', config);
      expect(() => readExperiment(dir, `bad${i}`)).toThrow(`${join(dir, `bad${i}`, 'arms', 'a.json')}: ${message}`);
    });
    // --arm picks arms in the order given; an unknown name is refused with the list.
    writeArm(dir, 'order', 'a', { command: 'train', settings: {} });
    writeArm(dir, 'order', 'b', { command: 'train', settings: {} });
    writeArm(dir, 'order', 'c', { command: 'train', settings: {} });
    const order = readExperiment(dir, 'order');
    expect(selectArms(order, ['c', 'a']).map((arm) => arm.name)).toEqual(['c', 'a']);
    expect(selectArms(order).map((arm) => arm.name)).toEqual(['a', 'b', 'c']);
    expect(() => selectArms(order, ['a', 'd'])).toThrow('--arm d: not an arm of order (a, b, c)');
    expect(() => readExperiment(dir, 'none')).toThrow(/no experiment 'none': .* does not exist \(experiments: bad0, bad1/);
  });

  it('turns settings into flags and groups seeds by name', () => {
    expect(settingsFlags({ loraRank: 8, loraTargets: ['q_proj', 'v_proj'], useRslora: true, resume: false })).toEqual(['--lora-rank', '8', '--lora-targets', 'q_proj,v_proj', '--use-rslora']);
    const dir = newDir('arms-');
    for (const name of ['rft-n10-seed0', 'rft-n10-seed12', 'base']) writeArm(dir, 'e', name, { command: 'train', settings: {} });
    expect(readExperiment(dir, 'e').arms.map((arm) => [arm.name, arm.group])).toEqual([['base', 'base'], ['rft-n10-seed0', 'rft-n10'], ['rft-n10-seed12', 'rft-n10']]);
  });
});

describe('experiment collector', () => {
  it('tabulates finished arms only (mean ± sample std over seeds), lists what is missing, and draws a band', () => {
    const dir = newDir('collect-');
    const load = { mean: 3.456, max: 5, samples: 4, cpus: 2 };
    const finished = { argv: [], attempts: [{ started: '', seconds: 120, exitCode: 0, resumed: false, commit: '0123456789abcdef0123456789abcdef01234567', load }], finished: true };
    const arms: [string, number, boolean][] = [['rft-seed0', 0.5, true], ['rft-seed1', 0.7, true], ['rft-seed2', 0.9, false]];
    for (const [name, final, done] of arms) {
      writeArm(dir, 'demo', name, { command: 'train', settings: { steps: 2, promptsPerStep: 2, numGenerations: 4, maxNewTokens: 16 } });
      const runDir = join(dir, 'demo', 'runs', name);
      mkdirSync(runDir, { recursive: true });
      writeFileSync(join(runDir, 'metrics.jsonl'), row({ step: 0, 'eval/pass@1': 0.25, 'eval/reward': 0.3 }) + row({ step: 1, reward: 0.2, loss: 0.1 }) + row({ step: 2, reward: final, loss: 0.05, 'eval/pass@1': final, 'eval/reward': final }));
      if (done) writeFileSync(join(runDir, 'arm.json'), JSON.stringify(finished));
    }
    const completion = (step: number, reward: number, reason: string) =>
      JSON.stringify({ step, prompt: 'p', completion: `kernel ${reward}`, reward, components: { correctness: { score: reward, reason } } }) + '\n';
    writeFileSync(
      join(dir, 'demo', 'runs', 'rft-seed0', 'completions.jsonl'),
      completion(1, 0, `wrong output${HACKS_MARKER}noop_same_output: kernel does nothing]`) + completion(1, 1, 'matches') + completion(2, 0.5, 'close') + '{"step": 2, "pro',
    );
    // Held-out greedy completions: the samples come from the last evaluation only.
    writeFileSync(
      join(dir, 'demo', 'runs', 'rft-seed1', 'eval-completions.jsonl'),
      completion(0, 1, 'right at the start') + completion(2, 0, 'wrong at the end') + completion(2, 0.7, 'right at the end'),
    );
    writeFileSync(join(dir, 'demo', 'README.md'), `# demo\n\n${RESULTS_BEGIN.replace('NAME', 'demo')}\nold table\n${RESULTS_END}\n\nConclusion.\n`);
    const { markdown } = collect(readExperiment(dir, 'demo'));
    // pass@1 at the end: 0.5 and 0.7 → 0.600 ± 0.141 (the unfinished seed's 0.9 is not in the mean); the last
    // steps' training reward: (0.2 + 0.5) / 2 and (0.2 + 0.7) / 2 → 0.400 ± 0.071.
    expect(markdown).toContain('| rft | 2/3 | 2 steps × 2 prompts × 4 samples ≤ 16 tokens | 2.0 | 0.250 ± 0.000 | 0.600 ± 0.141 | 0.300 ± 0.000 | 0.600 ± 0.141 | 0.200 ± 0.000 | 0.400 ± 0.071 |');
    expect(markdown).toContain('| rft-seed0 | finished | 2/2 | 1 | 2.0 | 3.5, 5.0 / 2 | 0123456789 |');
    expect(markdown).toContain('| rft-seed2 | interrupted or running | 2/2 | 0 | — | — | — |');
    expect(markdown).toContain('Not finished: rft-seed2.');
    const readme = readFileSync(join(dir, 'demo', 'README.md'), 'utf8');
    expect(readme).not.toContain('old table');
    expect(readme).toContain(markdown);
    expect(readme.endsWith(`${RESULTS_END}\n\nConclusion.\n`)).toBe(true);
    const svg = readFileSync(join(dir, 'demo', 'curves.svg'), 'utf8');
    expect(svg).toContain('rft (2 runs)');
    expect(svg).toContain('<polygon'); // the min–max band of the two finished seeds
    expect(svg).toContain('completions with reward hacks found, per step');
    const samples = readFileSync(join(dir, 'demo', 'samples.md'), 'utf8');
    expect(samples).toContain('## rft-seed0\n');
    expect(samples).toMatch(/\*\*best\*\* \(step 1, reward 1\.000\): correctness 1 \(matches\)\n\n````\nkernel 1\n````/);
    expect(samples).toMatch(/\*\*worst\*\* \(step 1, reward 0\.000\): correctness 0 \(wrong output \[hacks: noop_same_output/);
    expect(samples).toContain('## rft-seed1\n\nHeld-out, greedy, after step 2. Prompt of the best: p\n\n**best held-out** (step 2, reward 0.700): correctness 0.7 (right at the end)');
    expect(samples).toContain('**worst held-out** (step 2, reward 0.000): correctness 0 (wrong at the end)');
    expect(samples).not.toContain('right at the start');
  });
});

describe('experiment collector, arms that skip their step-0 evaluation', () => {
  it('take it from the arm of 0 steps (the untouched model), in the table and the curves, and each group keeps its colour', () => {
    const dir = newDir('collect-start-');
    const finished = { argv: [], attempts: [{ started: '', seconds: 60, exitCode: 0, resumed: false }], finished: true };
    const arm = (name: string, settings: Record<string, unknown>, rows: Record<string, number>[]) => {
      writeArm(dir, 'demo', name, { command: 'train', settings });
      const runDir = join(dir, 'demo', 'runs', name);
      mkdirSync(runDir, { recursive: true });
      writeFileSync(join(runDir, 'metrics.jsonl'), rows.map(row).join(''));
      writeFileSync(join(runDir, 'arm.json'), JSON.stringify(finished));
    };
    arm('base', { steps: 0 }, [{ step: 0, 'eval/pass@1': 0.25, 'eval/reward': 0.3 }]);
    arm('own-seed0', { steps: 1, evalEvery: 1 }, [{ step: 0, 'eval/pass@1': 0.25, 'eval/reward': 0.3 }, { step: 1, reward: 0.5, 'eval/pass@1': 0.5, 'eval/reward': 0.6 }]);
    arm('skip-seed0', { steps: 1, evalEvery: 1, skipEvalAtStart: true }, [{ step: 1, reward: 0.4, 'eval/pass@1': 0.75, 'eval/reward': 0.8 }]);
    const { markdown } = collect(readExperiment(dir, 'demo'));
    expect(markdown).toContain('| skip | 1/1 | 1 steps × 4 prompts × 4 samples ≤ 32 tokens | 1.0 | 0.250 (n=1) | 0.750 (n=1) | 0.300 (n=1) | 0.800 (n=1) | 0.400 (n=1) | 0.400 (n=1) |');
    expect(markdown).toContain("Step 0 of the arms that skip their own evaluation of the untouched model (`skipEvalAtStart`) is the `base` arm's.");
    const panels = resultsPanels(readExperiment(dir, 'demo').arms.map((a) => summarizeArm(a, { step: 0, 'eval/pass@1': 0.25 })));
    const heldOut = panels.find((p) => p.title === 'held-out pass@1 (greedy)')!;
    expect(heldOut.series.map((s) => [s.name, s.colorIndex, s.points])).toEqual([
      ['base (1 run)', 0, [[0, 0.25]]],
      ['own (1 run)', 1, [[0, 0.25], [1, 0.5]]],
      ['skip (1 run)', 2, [[0, 0.25], [1, 0.75]]],
    ]);
    // The training reward panel has no base series, and the others keep their colours.
    expect(panels[0].series.map((s) => [s.name, s.colorIndex])).toEqual([['own (1 run)', 1], ['skip (1 run)', 2]]);
  });
});

describe('experiment runner on a tiny model', () => {
  let tiny: TinyRun;
  beforeAll(() => {
    tiny = prepareTinyRun();
    process.env.XDG_RUNTIME_DIR ??= '/tmp';
  });

  it('runs each arm once, resumes an interrupted one from its checkpoint, skips finished ones, and collects them', { timeout: 600_000 }, async () => {
    const dir = newDir('experiment-');
    const grpo = (seed: number) => ({
      command: 'train',
      settings: {
        model: tiny.model, task: 'tiny-arithmetic', rewardConfig: tiny.rewardConfig, steps: 2, promptsPerStep: 2, numGenerations: 2, maxNewTokens: 6,
        evalEvery: 1, evalPrompts: 2, saveEvery: 1, lrSchedule: 'constant', learningRate: 0.02, loraRank: 4, seed,
      },
    });
    writeArm(dir, 'demo', 'base', { command: 'train', settings: { ...grpo(0).settings, steps: 0 } });
    // Their starting model is the base arm's (LoRA starts as the identity whatever the seed): no evaluation before the first step.
    const trained = (seed: number) => ({ command: 'train', settings: { ...grpo(seed).settings, skipEvalAtStart: true } });
    writeArm(dir, 'demo', 'grpo-seed0', trained(0));
    writeArm(dir, 'demo', 'grpo-seed1', trained(1));
    const pairs = join(dir, 'pairs.jsonl');
    writeFileSync(pairs, (JSON.stringify({ prompt: '2+3=', completion: '5' }) + '\n').repeat(4));
    writeArm(dir, 'demo', 'sft', { command: 'sft', settings: { model: tiny.model, data: pairs, steps: 2, batch: 2, loraRank: 4, learningRate: 0.01, task: 'tiny-arithmetic', rewardConfig: tiny.rewardConfig, evalPrompts: 2, skipEvalAtStart: true, maxNewTokens: 6 } });
    const experiment = readExperiment(dir, 'demo');
    const arm = (name: string) => experiment.arms.find((a) => a.name === name) as Arm;

    // grpo-seed1 was stopped after its first checkpoint (the same settings, one step done), evaluated
    // before its first step: skipping that evaluation changes nothing a resumed run computes.
    const interrupted = await runNode([TRAIN, ...settingsFlags({ ...grpo(1).settings, steps: 1 }), '--out-dir', arm('grpo-seed1').runDir]);
    expect(interrupted.status, interrupted.stderr).toBe(0);
    const stepOne = metrics(arm('grpo-seed1').runDir).find((r) => r.step === 1);

    const notes: string[] = [];
    const options = { root: REPO_ROOT, queueLock: join(dir, '.queue.lock'), say: (m: string) => notes.push(m), pollMs: 100 };
    expect(await runArms(experiment.arms, options)).toEqual([]);
    for (const a of experiment.arms) expect(readArmRecord(a)?.finished, a.name).toBe(true);
    expect(readArmRecord(arm('grpo-seed1'))?.attempts.map((t) => t.resumed)).toEqual([true]);
    expect(readArmRecord(arm('grpo-seed1'))?.argv).toContain('--resume');
    expect(readArmRecord(arm('grpo-seed0'))?.attempts.map((t) => t.resumed)).toEqual([false]);
    // Each attempt names the code it ran and the load it ran under (sampled at least at its start and end).
    for (const attempt of readArmRecord(arm('grpo-seed0'))?.attempts ?? []) {
      expect(attempt.commit).toMatch(/^[0-9a-f]{40}(-dirty)?$/);
      expect(attempt.load?.samples).toBeGreaterThanOrEqual(2);
      expect(attempt.load?.max).toBeGreaterThanOrEqual(attempt.load?.mean ?? Infinity);
    }
    const resumed = metrics(arm('grpo-seed1').runDir);
    expect(resumed.map((r) => r.step)).toEqual([0, 1, 2]);
    // Every evaluation's greedy completions are logged under its step, once each although the run was resumed.
    const evalCompletions = readFileSync(join(arm('grpo-seed1').runDir, 'eval-completions.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { step: number; reward: number; completion: string });
    expect(evalCompletions.map((c) => c.step)).toEqual([0, 0, 1, 1, 2, 2]);
    for (const r of resumed) expect(evalCompletions.filter((c) => c.step === r.step).reduce((sum, c) => sum + c.reward / 2, 0)).toBeCloseTo(Number(r['eval/reward']), 12);
    expect(resumed[1]).toEqual(stepOne); // the step before the interruption is kept, not redone
    // steps 0: the run is the starting model's held-out evaluation, equal to a trained arm's step 0.
    const base = metrics(arm('base').runDir);
    expect(base).toEqual([resumed[0]]);
    // Arms told to skip it evaluate after training only.
    expect(metrics(arm('grpo-seed0').runDir).map((r) => [r.step, 'eval/pass@1' in r])).toEqual([[1, true], [2, true]]);
    expect(metrics(arm('sft').runDir).filter((r) => 'eval/pass@1' in r).map((r) => r.step)).toEqual([2]);
    const sftEnd = metrics(arm('sft').runDir).find((r) => r.step === 2 && 'eval/pass@1' in r);
    // One component of weight 1: the held-out reward is that component's mean.
    for (const evaluated of [resumed[0], resumed[2], sftEnd]) expect(evaluated?.['eval/rewards/digits/mean']).toBe(evaluated?.['eval/reward']);

    const modified = experiment.arms.map((a) => statSync(join(a.runDir, 'metrics.jsonl')).mtimeMs);
    notes.length = 0;
    expect(await runArms(experiment.arms, options)).toEqual([]);
    expect(notes).toEqual(experiment.arms.map((a) => `${a.name}: finished already, skipped`));
    expect(experiment.arms.map((a) => statSync(join(a.runDir, 'metrics.jsonl')).mtimeMs)).toEqual(modified);

    const { markdown } = collect(experiment);
    expect(markdown).toMatch(/\| grpo \| 2\/2 \| 2 steps × 2 prompts × 2 samples ≤ 6 tokens \|/);
    expect(markdown).toMatch(/\| sft \| 1\/1 \| 2 steps × 2 labelled sequences \|/);
    expect(markdown).toMatch(/\| base \| 1\/1 \| held-out evaluation only \(≤ 6 tokens\) \|/);
    expect(markdown).toContain('Every arm finished.');
    expect(readFileSync(join(dir, 'demo', 'curves.svg'), 'utf8')).toContain('grpo (2 runs)');
  });
});
