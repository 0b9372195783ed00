import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { writeRandomCheckpoint } from './helpers/tiny-checkpoint.js';
import { metrics, newDir, prepareTinyRun, runNode, runTrain, SFT, startTrain, waitFor, type TinyRun } from './helpers/train-cli.js';

// What train.js and sft.js do with the user's work when things go wrong: a second run in the same
// folder, signals, a second writer, changed settings on resume, bad rows and broken graders.
let tiny: TinyRun;
const short = ['--steps', '2'];

describe('run safety', () => {
  beforeAll(() => {
    tiny = prepareTinyRun();
  });

  it('refuses a second run in a folder that holds one; --overwrite replaces it as a whole', async () => {
    const dir = newDir('grpo-twice-');
    const first = await runTrain(tiny, dir, short);
    expect(first.status, first.stderr).toBe(0);
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    const before = readFileSync(join(dir, 'metrics.jsonl'), 'utf8');

    const second = await runTrain(tiny, dir, short);
    expect(second.status).not.toBe(0);
    expect(second.stderr).toMatch(/already holds a run \(checkpoint-2, completions\.jsonl, curves\.svg, eval-completions\.jsonl, metrics\.jsonl\)/);
    expect(second.stderr).toMatch(/--resume.*--overwrite/);
    expect(readFileSync(join(dir, 'metrics.jsonl'), 'utf8')).toBe(before);

    const replaced = await runTrain(tiny, dir, ['--steps', '1', '--overwrite']);
    expect(replaced.status, replaced.stderr).toBe(0);
    expect(metrics(dir).map((r) => r.step)).toEqual([0, 1]);
    expect(existsSync(join(dir, 'checkpoint-2'))).toBe(false);
    expect(existsSync(join(dir, 'checkpoint-1'))).toBe(true);
    expect(readFileSync(join(dir, 'notes.txt'), 'utf8')).toBe('mine');

    const data = join(tiny.model, 'pairs.jsonl');
    writeFileSync(data, '{"prompt": "What is 2 + 3?", "completion": "<answer>5</answer>"}\n');
    const sft = (extra: string[] = []) => runNode([SFT, '--model', tiny.model, '--data', data, '--steps', '1', '--batch', '1', '--lora-rank', '2', '--out-dir', dir, ...extra]);
    expect((await sft()).stderr).toMatch(/already holds a run \(checkpoint-1, completions\.jsonl, curves\.svg, eval-completions\.jsonl, metrics\.jsonl\)\. Replace it with --overwrite/);
    expect((await sft(['--overwrite'])).status).toBe(0);
    expect(existsSync(join(dir, 'adapter', 'adapter_config.json'))).toBe(true);
    expect(existsSync(join(dir, 'checkpoint-1'))).toBe(false);
    // The suite's first trainer runs: on a fresh machine (a cold Mesa shader cache) they compile the
    // kernels' pipelines, ~100 s for the first run alone; warm, the whole test takes ~10 s.
  }, 360_000);

  it('SIGTERM (twice at once counts once) finishes the step, saves a checkpoint and exits 143; leftovers of killed writes go at the next start', async () => {
    const dir = newDir('grpo-sigterm-');
    const run = startTrain(tiny, dir, ['--steps', '8', '--save-every', '100']);
    const trained = () => existsSync(join(dir, 'metrics.jsonl')) && metrics(dir).some((r) => r.step >= 1);
    await waitFor(trained);
    run.child.kill('SIGTERM');
    // A copy arriving together, as from whoever forwards a signal sent to the whole job, counts once.
    await new Promise((resolve) => setTimeout(resolve, 50));
    run.child.kill('SIGTERM');
    const { status, stderr } = await run.exited;
    expect(status, stderr).toBe(143);
    const stopped = /stopped by SIGTERM after step (\d+); newest checkpoint (\S+); continue with --resume/.exec(stderr);
    expect(stopped, stderr).not.toBeNull();
    const step = Number(stopped![1]);
    expect(step).toBeLessThan(8);
    expect(stopped![2]).toBe(join(dir, `checkpoint-${step}`));
    expect(metrics(dir).at(-1)!.step).toBe(step);

    const leftover = join(dir, '.checkpoint-9.4242.tmp');
    mkdirSync(leftover);
    writeFileSync(join(leftover, 'adapter_model.safetensors'), 'half');
    const resumed = await runTrain(tiny, dir, ['--steps', '8', '--save-every', '100', '--resume']);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`resuming at step ${step}`);
    expect(existsSync(leftover)).toBe(false);
    expect(metrics(dir).map((r) => r.step).filter((s) => s > 0)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it("Ctrl-C at a terminal reaches train.js's launcher and the trainer alike: one stop, a checkpoint, exit 130", async () => {
    const dir = newDir('grpo-sigint-');
    const run = startTrain(tiny, dir, ['--steps', '8', '--save-every', '100'], true);
    await waitFor(() => existsSync(join(dir, 'metrics.jsonl')) && metrics(dir).some((r) => r.step >= 1));
    // The terminal signals the whole foreground process group: the launcher forwards its copy too.
    process.kill(-run.child.pid!, 'SIGINT');
    const { status, stderr } = await run.exited;
    expect(status, stderr).toBe(130);
    expect(stderr).toMatch(/stopped by SIGINT after step \d+; newest checkpoint \S+; continue with --resume/);
    expect(stderr).not.toContain('artificially reduced');
  });

  it('locks the folder: a second writer is refused while the first lives; the lock of a killed run is stale', async () => {
    const dir = newDir('grpo-lock-');
    const first = startTrain(tiny, dir, ['--steps', '8', '--save-every', '1']);
    await waitFor(() => existsSync(join(dir, 'checkpoint-1', 'trainer_state.json')));
    const second = await runTrain(tiny, dir, ['--steps', '8', '--overwrite']);
    expect(second.status).not.toBe(0);
    expect(second.stderr).toContain(`--out-dir ${dir} is in use by process ${first.child.pid}`);
    expect(existsSync(join(dir, 'checkpoint-1'))).toBe(true);
    first.child.kill('SIGKILL');
    await first.exited;

    const resumed = await runTrain(tiny, dir, ['--steps', '8', '--save-every', '1', '--resume']);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`removing a stale lock (process ${first.child.pid} is gone)`);
    expect(existsSync(join(dir, '.run.lock'))).toBe(false);
  });

  it('resume is exact or refused: --steps with a decaying schedule, changed data files', async () => {
    const cosine = newDir('grpo-cosine-');
    expect((await runTrain(tiny, cosine, short)).status).toBe(0);
    const longer = await runTrain(tiny, cosine, ['--steps', '4', '--resume']);
    expect(longer.status).not.toBe(0);
    expect(longer.stderr).toContain('--steps 2 vs 4 (the cosine learning-rate schedule decays over --steps)');

    const constant = newDir('grpo-constant-');
    const data = join(constant, 'sums.jsonl');
    writeFileSync(data, '{"prompt": "1+2="}\n{"prompt": "3+4="}\n');
    const rows = ['--lr-schedule', 'constant', '--task', data];
    expect((await runTrain(tiny, constant, [...short, ...rows])).status).toBe(0);
    const extended = await runTrain(tiny, constant, ['--steps', '3', '--resume', ...rows]);
    expect(extended.status, extended.stderr).toBe(0);
    expect(metrics(constant).map((r) => r.step)).toEqual([0, 1, 2, 3]);

    // A checkpoint from before a setting existed resumes as if it had the default.
    const statePath = join(constant, 'checkpoint-3', 'trainer_state.json');
    const state = JSON.parse(readFileSync(statePath, 'utf8')) as { config: Record<string, unknown> };
    delete state.config.skipLongRows;
    writeFileSync(statePath, JSON.stringify(state));
    const older = await runTrain(tiny, constant, ['--steps', '4', '--resume', ...rows]);
    expect(older.status, older.stderr).toBe(0);

    writeFileSync(data, '{"prompt": "1+2="}\n{"prompt": "5+4="}\n');
    const changed = await runTrain(tiny, constant, ['--steps', '5', '--resume', ...rows]);
    expect(changed.status).not.toBe(0);
    expect(changed.stderr).toContain(`${data} changed since the checkpoint`);
  });

  it('checks rows and graders before the first step; a grader failing on every completion stops the run', async () => {
    const dir = newDir('grpo-preflight-');
    const data = join(dir, 'rows.jsonl');
    writeFileSync(data, `{"prompt": "1+2="}\n{"prompt": "${'7'.repeat(300)}"}\n{"prompt": "3+4="}\n`);
    const long = await runTrain(tiny, newDir('grpo-long-'), ['--task', data]);
    expect(long.status).not.toBe(0);
    expect(long.stderr).toContain(`1 data row does not fit the model's context of 256 tokens with --max-new-tokens 12:\n  ${data}:2 (`);
    expect(long.stderr).toContain('--skip-long-rows');
    const skipped = await runTrain(tiny, newDir('grpo-skip-'), ['--task', data, '--skip-long-rows', '--steps', '1']);
    expect(skipped.status, skipped.stderr).toBe(0);
    expect(skipped.stderr).toContain(`${data}:2 (`);

    const reward = (name: string, grader: object) => {
      const path = join(dir, `${name}.json`);
      writeFileSync(path, JSON.stringify({ components: [{ name, grader, timeoutMs: 5000 }] }));
      return ['--reward-config', path, '--steps', '1'];
    };
    const missing = await runTrain(tiny, newDir('grpo-missing-'), reward('gone', { type: 'programmatic', module: './nowhere.mjs' }));
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toMatch(/reward component 'gone': .*nowhere\.mjs/);
    expect(missing.stderr).not.toMatch(/step 1/);

    const absent = await runTrain(tiny, newDir('grpo-absent-'), reward('absent', { type: 'external', command: join(dir, 'no-such-grader') }));
    expect(absent.stderr).toMatch(/reward component 'absent': .*no-such-grader failed to start: .*ENOENT/);

    const chatty = await runTrain(tiny, newDir('grpo-chatty-'), reward('chatty', { type: 'external', command: process.execPath, args: ['-e', "process.stdin.on('data', () => console.log('hello'))"] }));
    expect(chatty.stderr).toContain(`reward component 'chatty': ${process.execPath} printed non-JSON output: "hello"`);

    writeFileSync(join(dir, 'throws.mjs'), "export default () => { throw new Error('no answer key'); };\n");
    const throwing = await runTrain(tiny, newDir('grpo-throws-'), reward('throws', { type: 'programmatic', module: './throws.mjs' }));
    expect(throwing.status, throwing.stderr).toBe(3);
    expect(throwing.stderr).toContain("step 1: reward component 'throws' (grader failed: no answer key) failed on every completion");
  });

  it('--init-adapter: conflicting LoRA flags are refused, the adapter\'s own settings are reported', async () => {
    const dir = newDir('grpo-init-');
    const data = join(dir, 'pairs.jsonl');
    writeFileSync(data, '{"prompt": "What is 2 + 3?", "completion": "<answer>5</answer>"}\n');
    const sft = await runNode([SFT, '--model', tiny.model, '--data', data, '--steps', '1', '--batch', '1', '--lora-rank', '4', '--lora-alpha', '8', '--out-dir', join(dir, 'sft')]);
    expect(sft.status, sft.stderr).toBe(0);
    const adapter = join(dir, 'sft', 'adapter');
    const conflict = await runTrain(tiny, join(dir, 'a'), ['--steps', '1', '--init-adapter', adapter, '--lora-alpha', '32']);
    expect(conflict.status).not.toBe(0);
    expect(conflict.stderr).toContain(`--init-adapter ${adapter}: --lora-alpha 32 conflicts with the adapter's 8`);
    const adopted = await runTrain(tiny, join(dir, 'b'), ['--steps', '1', '--init-adapter', adapter]);
    expect(adopted.status, adopted.stderr).toBe(0);
    expect(adopted.stderr).toContain(`LoRA r=4 alpha 8 from ${adapter}`);
    const state = JSON.parse(readFileSync(join(dir, 'b', 'checkpoint-1', 'trainer_state.json'), 'utf8')) as { config: Record<string, unknown> };
    expect(state.config).toMatchObject({ loraRank: 4, loraAlpha: 8, loraDropout: 0.1 });
  });

  it('says what it falls back on, and refuses what it cannot do: no chat template, non-UTF-8 rows, NaN weights', async () => {
    const plain = newDir('plain-model-');
    cpSync(tiny.model, plain, { recursive: true });
    rmSync(join(plain, 'tokenizer_config.json'));
    const warned = await runTrain(tiny, newDir('grpo-plain-'), ['--model', plain, '--steps', '1']);
    expect(warned.status, warned.stderr).toBe(0);
    expect(warned.stderr).toContain(`warning: ${plain}: the tokenizer has no chat template`);
    const withSystem = join(plain, 'system.jsonl');
    writeFileSync(withSystem, '{"prompt": "1+2="}\n{"prompt": "3+4=", "system": "Be brief."}\n');
    const refused = await runTrain(tiny, newDir('grpo-plain-'), ['--model', plain, '--task', withSystem]);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain(`but ${withSystem}:2 has a system message, which only a chat template can place`);

    const latin1 = join(plain, 'latin1.jsonl');
    writeFileSync(latin1, Buffer.concat([Buffer.from('{"prompt": "1+2="}\n{"prompt": "caf'), Buffer.from([0xe9]), Buffer.from('"}\n')]));
    const encoding = await runTrain(tiny, newDir('grpo-latin1-'), ['--task', latin1]);
    expect(encoding.status).not.toBe(0);
    expect(encoding.stderr).toContain(`${latin1}:2: not valid UTF-8`);

    const poisoned = writeRandomCheckpoint(1, { nanWeights: true });
    const diverged = await runTrain(tiny, newDir('grpo-nan-'), ['--model', poisoned, '--steps', '2']);
    expect(diverged.status, diverged.stderr).toBe(2);
    // The first generation meets the NaN logits (a left-out micro-batch would never compute the loss).
    expect(diverged.stderr).toMatch(/held-out evaluation before training: the model's logits are not finite \(NaN or ±inf\) in 3 of 3 rows at generated token 1: .* — the starting model \(its weights, or --init-adapter\) is broken/);
    expect(diverged.stderr).not.toContain('last good checkpoint');
  });
});
