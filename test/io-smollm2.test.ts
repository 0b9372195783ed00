import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { GgufFile } from '../src/io/gguf.js';
import { GgufHfReader } from '../src/io/gguf-hf-reader.js';
import { smallModelPath } from '../src/io/fetch-small-model.js';
import { resolveModel } from '../src/io/model-registry.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { runPython } from './python/run-python.js';
import {
  CONVERSATIONS,
  TRICKY_STRINGS,
  type TokenizerReference,
  digitSplitDisagreements,
  expectSameAsReference,
} from './tokenizer-cases.js';

// The real `small` model. The project setup fetches it (node dist/src/cli/fetch-small-model.js);
// without it these tests fail rather than skip, so a missing model is never mistaken for a pass.
const path = smallModelPath();
if (!existsSync(path)) {
  throw new Error(`${path} is missing: run the project setup (node dist/src/cli/fetch-small-model.js) first`);
}

interface SmolLM2Reference {
  config: Record<string, unknown> & { rope_parameters: { rope_theta: number } };
  gguf: Record<string, { type: string; shape: number[]; sha256: string }>;
  hf: Record<string, { gguf_name: string; sha256: string }>;
  tokenizer: TokenizerReference;
}

const reference = JSON.parse(
  runPython('smollm2_reference.py', [], JSON.stringify({ gguf: path, strings: TRICKY_STRINGS, chats: CONVERSATIONS })),
) as SmolLM2Reference;

const sha256 = (values: Float32Array) => createHash('sha256').update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength)).digest('hex');

describe('SmolLM2-135M-Instruct Q4_1 GGUF (the small model)', () => {
  const file = GgufFile.open(path);
  afterAll(() => file.close());

  it('holds Q4_1 matrices, a Q8_0 embedding and F32 norms', () => {
    const counts: Record<string, number> = {};
    for (const name of file.tensorNames()) counts[file.info(name).dtype] = (counts[file.info(name).dtype] ?? 0) + 1;
    expect(counts).toEqual({ Q4_1: 210, Q8_0: 1, F32: 61 });
    expect(file.info('token_embd.weight').dtype).toBe('Q8_0');
  });

  it('dequantizes every tensor bit-identically to gguf-py', () => {
    expect(file.tensorNames().sort()).toEqual(Object.keys(reference.gguf).sort());
    for (const name of file.tensorNames()) {
      const want = reference.gguf[name];
      expect(file.info(name).shape, name).toEqual(want.shape);
      expect(sha256(file.readFloat32(name)), name).toBe(want.sha256);
    }
  });

  it("gives every Hugging Face tensor transformers' name and values (Q/K unpermuted)", () => {
    const reader = GgufHfReader.open(path);
    try {
      expect(reader.tensorNames().sort()).toEqual(Object.keys(reference.hf).sort());
      for (const [name, want] of Object.entries(reference.hf)) {
        expect(sha256(reader.readFloat32(name)), `${name} (${want.gguf_name})`).toBe(want.sha256);
      }
    } finally {
      reader.close();
    }
  });

  it("resolves as `small` with the config transformers builds", () => {
    const model = resolveModel('small');
    expect(model.weights).toEqual({ format: 'gguf', path });
    expect(model.tokenizer).toEqual({ format: 'gguf', path });
    const want = reference.config;
    expect(model.config.architectures).toEqual(['LlamaForCausalLM']);
    for (const key of [
      'model_type', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads',
      'head_dim', 'rms_norm_eps', 'vocab_size', 'max_position_embeddings', 'tie_word_embeddings', 'bos_token_id',
      'eos_token_id', 'hidden_act',
    ] as const) {
      expect(model.config[key], key).toEqual(want[key]);
    }
    expect(model.config.rope_theta).toBe(want.rope_parameters.rope_theta);
    expect(model.config).toMatchObject({ hidden_size: 576, num_hidden_layers: 30, num_key_value_heads: 3, vocab_size: 49152 });
  });

  it('tokenizes, decodes and renders chats like transformers (with SmolLM2 digit splitting)', () => {
    const tokenizer = Tokenizer.fromSource(resolveModel('small').tokenizer);
    expectSameAsReference(tokenizer, reference.tokenizer, true);
    // Where transformers' GGUF loader differs from SmolLM2's own tokenizer.json (digits split
    // singly): runs of spaces before a digit, and multi-digit runs of non-ASCII numerals.
    expect(digitSplitDisagreements(reference.tokenizer)).toEqual(['a  1', 'x   123 456\t7', 'Unicode numbers: ٣٤ ² ½ Ⅻ ０１２']);
    expect([tokenizer.bosTokenId, tokenizer.eosTokenId]).toEqual([1, 2]);
  });
});
