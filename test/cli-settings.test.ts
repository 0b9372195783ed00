import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { generationBatchLimit } from '../src/generate/batch-limit.js';
import { EXIT_USAGE } from '../src/cli/options.js';
import { parseHfConfig } from '../src/io/hf-config.js';
import { resolveBaseDtype } from '../src/rl/grpo-config.js';
import { GENERATE, newDir, prepareTinyRun, runNode, SFT, TRAIN, type TinyRun } from './helpers/train-cli.js';
import { REPO_ROOT } from './python/run-python.js';

// One schema checks every command's flags and config files: types, integers, ranges, choices and
// booleans, with messages that name the flag or the file and key, before anything is loaded.
let tiny: TinyRun;

describe('command-line and config settings', () => {
  beforeAll(() => {
    tiny = prepareTinyRun();
  });

  it('train.js refuses wrong types and ranges, naming each flag', async () => {
    const cases: [string[], string][] = [
      [['--steps', 'abc'], '--steps must be integer, got "abc"'],
      [['--steps', '2.5'], '--steps must be integer, got "2.5"'],
      [['--top-p', '0'], '--top-p must be > 0, got 0'],
      [['--top-k', '1.5'], '--top-k must be integer, got "1.5"'],
      [['--epsilon-high=-0.1'], '--epsilon-high must be >= 0, got -0.1'],
      [['--delta', '0.5'], '--delta must be > 1, got 0.5'],
      [['--temperature=-1'], '--temperature must be >= 0, got -1'],
      [['--loss-type', 'ppo'], '--loss-type must be equal to one of the allowed values: grpo, bnpo, dr_grpo, dapo, got "ppo"'],
      [['--base-dtype', 'bf16'], '--base-dtype must be equal to one of the allowed values: auto, f32, f16, got "bf16"'],
      [['--adam-betas', '0.9,x'], '--adam-betas (item 2) must be number, got "x"'],
      [['--resume', '--overwrite'], '--resume and --overwrite contradict each other'],
      [['--steps', '0', '--skip-eval-at-start'], '--steps 0 with --skip-eval-at-start would do nothing'],
    ];
    for (const [flags, message] of cases) {
      const result = await runNode([TRAIN, '--out-dir', newDir('grpo-flags-'), ...flags]);
      expect(result.status, flags.join(' ')).toBe(EXIT_USAGE);
      expect(result.stderr).toContain(message);
    }
  });

  it('a config file must hold the right types (a string is not a boolean), named by file and key', async () => {
    const config = join(newDir('grpo-config-'), 'run.json');
    writeFileSync(config, JSON.stringify({ resume: 'yes', 'max-new-tokens': '12', steps: 3 }));
    const result = await runNode([TRAIN, '--config', config]);
    expect(result.status).toBe(EXIT_USAGE);
    expect(result.stderr).toContain(`${config}: "resume" must be boolean, got "yes"`);
    expect(result.stderr).toContain(`${config}: "max-new-tokens" must be integer, got "12"`);
    writeFileSync(config, JSON.stringify({ stepz: 3 }));
    expect((await runNode([TRAIN, '--config', config])).stderr).toContain(`${config}: unknown setting "stepz"`);
  });

  it('sft.js and generate.js check their numbers too, and --batch against the device limits', async () => {
    const sft = await runNode([SFT, '--data', join(tiny.model, 'none.jsonl'), '--steps', 'abc']);
    expect(sft.status).toBe(EXIT_USAGE);
    expect(sft.stderr).toContain('--steps must be integer, got "abc"');
    const text = await runNode([GENERATE, '--model', tiny.model, '--batch', 'abc']);
    expect(text.status).toBe(EXIT_USAGE);
    expect(text.stderr).toContain('--batch must be integer, got "abc"');
    const huge = await runNode([GENERATE, '--model', tiny.model, '--prompt', '1+2=', '--batch', '100000', '--max-new-tokens', '4']);
    expect(huge.status).toBe(EXIT_USAGE);
    expect(huge.stderr).toMatch(/--batch 100000 does not fit this device: at most \d+ sequences of \d+ prompt \+ 4 new tokens/);
  });

  it('the frozen base is f16 on a CPU adapter and f32 on a GPU unless a run says which', () => {
    expect(resolveBaseDtype('auto', { isCpuAdapter: true, hasF16: true })).toBe('f16');
    expect(resolveBaseDtype('auto', { isCpuAdapter: true, hasF16: false })).toBe('f32');
    expect(resolveBaseDtype('auto', { isCpuAdapter: false, hasF16: true })).toBe('f32');
    for (const isCpuAdapter of [true, false]) {
      expect(resolveBaseDtype('f32', { isCpuAdapter, hasF16: true })).toBe('f32');
      expect(resolveBaseDtype('f16', { isCpuAdapter, hasF16: true })).toBe('f16');
    }
  });

  it('the generation batch limit names the binding limit', async () => {
    const config = parseHfConfig(
      { architectures: ['LlamaForCausalLM'], hidden_size: 64, intermediate_size: 256, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, vocab_size: 1000, max_position_embeddings: 512 },
      'test',
    );
    const limits = { maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 20, maxComputeWorkgroupsPerDimension: 65535 };
    // 10 prompt tokens × 256 MLP features × 4 bytes = 10240 bytes per sequence; 2^20 / 10240 = 102.
    expect(generationBatchLimit(config, limits, 10, 5)).toMatchObject({ batch: 102, reason: expect.stringContaining("the prompt's MLP activations take 10240 bytes") });
    const roomy = { ...limits, maxStorageBufferBindingSize: 2 ** 40, maxBufferSize: 2 ** 40 };
    expect(generationBatchLimit(config, roomy, 1, 5).batch).toBe(65535);
    expect(generationBatchLimit(config, roomy, 100, 5)).toMatchObject({ batch: Math.floor((65535 * 4) / 100), reason: expect.stringContaining('prefill matmul') });
  });

  it('every benchmark prints its usage for --help and refuses an unknown flag with it, before touching the GPU', async () => {
    const benches = ['bench', join('bench', 'peer')].flatMap((dir) =>
      readdirSync(join(REPO_ROOT, dir))
        .filter((file) => file.endsWith('.ts') && readFileSync(join(REPO_ROOT, dir, file), 'utf8').includes('benchArgs(import.meta.url'))
        .map((file) => join(REPO_ROOT, 'dist', dir, file.replace(/\.ts$/, '.js'))),
    );
    expect(benches.length).toBeGreaterThanOrEqual(12);
    for (const bench of benches) {
      const help = await runNode([bench, '--help']);
      expect(help.status, `${bench} --help: ${help.stderr}`).toBe(0);
      expect(help.stdout, bench).toMatch(/dist\/bench\/|npm run bench/);
      const wrong = await runNode([bench, '--no-such-flag']);
      expect(wrong.status, bench).toBe(EXIT_USAGE);
      expect(wrong.stderr, bench).toContain("Unknown option '--no-such-flag'");
    }
  });
});
