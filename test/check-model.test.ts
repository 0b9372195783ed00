import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { byteTokenizerFiles } from '../src/tokenizer/byte-tokenizer.js';
import { REPO_ROOT, runPythonAsync } from './python/run-python.js';

const CHECK_MODEL = join(REPO_ROOT, 'dist', 'src', 'cli', 'check-model.js');

/** Runs the built command without blocking the worker (it waits on transformers for seconds). */
function checkModel(model: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CHECK_MODEL, model, '--new-tokens', '6'], { env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('check-model', () => {
  beforeAll(() => {
    if (!existsSync(CHECK_MODEL)) throw new Error('dist/ is missing: npm test builds it first');
  });

  it('tiny: recognised as a Llama and matching transformers', async () => {
    const { status, stdout, stderr } = await checkModel('tiny');
    expect(status, stderr).toBe(0);
    expect(stdout).toContain('architecture LlamaForCausalLM (model_type llama): 4 layers, hidden 128, MLP 384 (silu), vocab 259');
    expect(stdout).toContain('full causal on all 4 layers');
    expect(stdout).toContain('parameters   820,736 (0.8 M)');
    expect(stdout).toMatch(/greedy {7}next-token argmax agrees at (\d+)\/\1 positions; 6-token greedy continuations identical for 3\/3 prompts/);
    expect(stdout).toContain('verdict      matches transformers');
  });

  it('a Qwen3-shaped random checkpoint with sliding layers and yarn rope: what was recognised, and a match', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'check-qwen3-'));
    const overrides = {
      head_dim: 24, use_sliding_window: true, sliding_window: 3, max_window_layers: 1,
      rope_parameters: { rope_type: 'yarn', rope_theta: 10000, factor: 4, original_max_position_embeddings: 64 },
    };
    await runPythonAsync('tiny_hf_reference.py', ['qwen3', dir, JSON.stringify(overrides)]);
    const { tokenizerJson, tokenizerConfig } = byteTokenizerFiles();
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson));
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig));
    const { status, stdout, stderr } = await checkModel(dir);
    expect(status, stderr).toBe(0);
    expect(stdout).toContain('architecture Qwen3ForCausalLM (model_type qwen3): 2 layers, hidden 64, MLP 96 (silu), vocab 300');
    expect(stdout).toContain('attention    GQA (2 query heads per kv head): 4 query heads, 2 kv heads, head_dim 24; sliding window 3 on layers 1, full causal on the other 1; per-head q/k RMSNorm');
    expect(stdout).toContain('rope         yarn, theta 10000, factor 4, original_max_position_embeddings 64, beta_fast 32, beta_slow 1, truncate true, attention_factor 1.13863');
    expect(stdout).toContain('dtype        stored F32 ×');
    expect(stdout).toContain('verdict      matches transformers');
  });
});
