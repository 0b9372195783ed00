import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { smallModelPath } from '../src/io/fetch-small-model.js';
import { resolveModel } from '../src/io/model-registry.js';
import { repositoryRoot } from '../src/io/repository-root.js';
import { initialLlamaWeights } from '../src/io/random-weights.js';
import { openWeights } from '../src/io/weight-source.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { runPython } from './python/run-python.js';
import { CONVERSATIONS, TRICKY_STRINGS, type TokenizerReference, expectSameAsReference } from './tokenizer-cases.js';

const workDir = mkdtempSync(join(tmpdir(), 'io-model-registry-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

describe('resolveModel on a Hugging Face checkpoint directory', () => {
  // A trained BPE tokenizer stored as GGUF, turned by transformers into a tokenizer.json directory
  // along with a tiny random Llama saved by save_pretrained.
  const ggufs = JSON.parse(runPython('make_tokenizer_gguf.py', [workDir])) as { smollm: string };
  const checkpoint = join(workDir, 'checkpoint');
  const written = JSON.parse(runPython('make_hf_checkpoint.py', [checkpoint, ggufs.smollm])) as {
    tensors: Record<string, [number[], number]>;
  };

  it('reads config, weights and tokenizer', () => {
    const model = resolveModel(checkpoint);
    expect(model.config).toMatchObject({
      architectures: ['LlamaForCausalLM'],
      hidden_size: 32,
      num_key_value_heads: 2,
      head_dim: 8,
      rope_theta: 10000,
      rms_norm_eps: 1e-6,
      tie_word_embeddings: true,
      vocab_size: 402,
    });
    expect(model.weights).toEqual({ format: 'safetensors', path: join(checkpoint, 'model.safetensors') });
    expect(model.tokenizer).toEqual({ format: 'hf-directory', path: checkpoint });

    const weights = openWeights(model.weights);
    try {
      expect(weights.tensorNames().sort()).toEqual(Object.keys(written.tensors).sort());
      for (const [name, [shape, sum]] of Object.entries(written.tensors)) {
        expect(weights.info(name).shape, name).toEqual(shape);
        expect(weights.readFloat32(name).reduce((a, b) => a + b, 0), name).toBeCloseTo(sum, 4);
      }
    } finally {
      weights.close();
    }
  });

  it("tokenizes like transformers from tokenizer.json, tokenizer_config.json and chat_template.jinja", () => {
    const reference = JSON.parse(
      runPython('tokenizer_reference.py', [], JSON.stringify({ gguf: ggufs.smollm, strings: TRICKY_STRINGS, chats: CONVERSATIONS })),
    ) as TokenizerReference;
    expectSameAsReference(Tokenizer.fromSource(resolveModel(checkpoint).tokenizer), reference, true);
  });

  it('rejects unsupported architectures, incomplete directories and unknown names', () => {
    const other = join(workDir, 'gpt2');
    cpSync(checkpoint, other, { recursive: true });
    const config = JSON.parse(readFileSync(join(other, 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(other, 'config.json'), JSON.stringify({ ...config, architectures: ['GPT2LMHeadModel'] }));
    expect(() => resolveModel(other)).toThrow(
      /config\.json: unsupported architecture \["GPT2LMHeadModel"\]; supported: LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM/,
    );
    rmSync(join(other, 'config.json'));
    expect(() => resolveModel(other)).toThrow(/has no config\.json/);
    const noWeights = join(workDir, 'no-weights');
    cpSync(checkpoint, noWeights, { recursive: true });
    rmSync(join(noWeights, 'model.safetensors'));
    expect(() => resolveModel(noWeights)).toThrow(/has neither model\.safetensors\.index\.json nor model\.safetensors/);
    expect(() => resolveModel('medium')).toThrow(/unknown model "medium": not in models\/registry\.json \(small, tiny, smollm2-1\.7b\) and no such path/);
    expect(() => resolveModel('random:medium')).toThrow(/unknown model "medium"/);
  });

  it('`random:<directory>` needs only config.json and the tokenizer, and opens initialLlamaWeights(config, 0)', () => {
    const shapeOnly = join(workDir, 'shape-only');
    cpSync(checkpoint, shapeOnly, { recursive: true });
    rmSync(join(shapeOnly, 'model.safetensors'));
    const model = resolveModel(`random:${shapeOnly}`);
    expect(model.name).toBe(`random:${shapeOnly}`);
    expect(model.config).toEqual(resolveModel(checkpoint).config);
    expect(model.tokenizer).toEqual({ format: 'hf-directory', path: shapeOnly });
    expect(model.weights).toEqual({ format: 'random', config: model.config, seed: 0 });
    const expected = initialLlamaWeights(model.config, 0);
    const weights = openWeights(model.weights);
    expect(weights.tensorNames().sort()).toEqual(Object.keys(expected).sort());
    expect(weights.info('model.layers.0.mlp.up_proj.weight').shape).toEqual([model.config.intermediate_size, model.config.hidden_size]);
    // Generated tensor by tensor when read, each from where the ones before it leave the generator.
    for (const name of Object.keys(expected)) expect(weights.readFloat32(name), name).toEqual(expected[name].data);
    expect(() => weights.readFloat32('lm_head.weight')).toThrow(/random weights \(seed 0\): no tensor "lm_head.weight"/);
  });
});

describe('registered models', () => {
  it('`tiny` is the project-trained Llama with its own byte-level tokenizer', () => {
    const tiny = resolveModel('tiny');
    expect(tiny.config).toMatchObject({ architectures: ['LlamaForCausalLM'], vocab_size: 259, hidden_size: 128, num_hidden_layers: 4 });
    expect(tiny.weights).toEqual({ format: 'safetensors', path: join(repositoryRoot(), 'models', 'tiny', 'model.safetensors') });
    expect(tiny.tokenizer).toEqual({ format: 'hf-directory', path: join(repositoryRoot(), 'models', 'tiny') });
  });

  it('`random:tiny` is tiny\'s architecture and tokenizer with fresh weights', () => {
    const tiny = resolveModel('tiny');
    expect(resolveModel('random:tiny')).toEqual({ ...tiny, name: 'random:tiny', weights: { format: 'random', config: tiny.config, seed: 0 } });
  });

  it('`smollm2-1.7b` is SmolLM2-1.7B’s shape (1.71 B parameters) with small’s tokenizer, for random:smollm2-1.7b', () => {
    const model = resolveModel('random:smollm2-1.7b');
    expect(model.config).toMatchObject({ hidden_size: 2048, intermediate_size: 8192, num_hidden_layers: 24, num_attention_heads: 32, num_key_value_heads: 32, vocab_size: 49152, tie_word_embeddings: true });
    expect(model.tokenizer).toEqual(resolveModel('small').tokenizer);
    const weights = openWeights(model.weights);
    const parameters = weights.tensorNames().reduce((n, name) => n + weights.info(name).shape.reduce((a, b) => a * b, 1), 0);
    expect(parameters / 1e9).toBeCloseTo(1.71, 2);
  });

  it('`small` and a .gguf path resolve to the same GGUF', () => {
    expect(resolveModel(smallModelPath()).weights).toEqual(resolveModel('small').weights);
  });
});
