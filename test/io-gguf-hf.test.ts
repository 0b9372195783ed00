import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GgufFile } from '../src/io/gguf.js';
import { GgufHfReader } from '../src/io/gguf-hf-reader.js';
import { ggufToHfName } from '../src/io/hf-names.js';
import { unpermuteQK } from '../src/io/qk-permutation.js';
import { runPython } from './python/run-python.js';

interface LlamaFixture {
  path: string;
  tensors: Record<string, { shape: number[]; f32: string }>;
  config: Record<string, unknown>;
}

const workDir = mkdtempSync(join(tmpdir(), 'io-gguf-hf-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

const f32FromBase64 = (text: string) => {
  const bytes = Buffer.from(text, 'base64');
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
};

describe('a Llama GGUF read as a Hugging Face checkpoint', () => {
  const fixture = JSON.parse(runPython('make_gguf_fixture.py', ['llama', workDir])) as LlamaFixture;
  const reader = GgufHfReader.open(fixture.path);
  afterAll(() => reader.close());

  it('maps every tensor to the Hugging Face name transformers uses', () => {
    expect(reader.tensorNames().sort()).toEqual(Object.keys(fixture.tensors).sort());
  });

  it("matches transformers' dequantized tensors, Q/K rows unpermuted by its reverse permutation", () => {
    for (const [name, want] of Object.entries(fixture.tensors)) {
      expect(reader.info(name).shape, name).toEqual(want.shape);
      expect(reader.readFloat32(name), name).toEqual(f32FromBase64(want.f32));
    }
  });

  it("builds the config transformers' GGUF loader builds", () => {
    const { config } = reader;
    const want = fixture.config;
    expect(config.architectures).toEqual(['LlamaForCausalLM']);
    for (const key of [
      'model_type', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads',
      'head_dim', 'rms_norm_eps', 'rope_theta', 'vocab_size', 'max_position_embeddings', 'tie_word_embeddings',
      'bos_token_id', 'eos_token_id',
    ] as const) {
      expect(config[key], key).toEqual(want[key]);
    }
  });
});

describe('GGUF to Hugging Face mapping details', () => {
  it('maps llama.cpp names and leaves derived tensors out', () => {
    expect(ggufToHfName('blk.12.ffn_down.weight')).toBe('model.layers.12.mlp.down_proj.weight');
    expect(ggufToHfName('blk.0.attn_k.bias')).toBe('model.layers.0.self_attn.k_proj.bias');
    expect(ggufToHfName('output.weight')).toBe('lm_head.weight');
    expect(ggufToHfName('rope_freqs.weight')).toBeNull();
    expect(ggufToHfName('blk.0.attn_qkv.weight')).toBeUndefined();
  });

  it('unpermutes a head: GGUF row 2d+t is HF row t*headDim/2+d', () => {
    // Two heads of dimension 4, one column: GGUF rows hold HF rows [0,2,1,3] within each head.
    const gguf = Float32Array.of(0, 2, 1, 3, 4, 6, 5, 7);
    expect([...unpermuteQK(gguf, 2, 8, 'test')]).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(() => unpermuteQK(new Float32Array(6), 2, 6, 'q')).toThrow(/q: cannot undo the Q\/K permutation of 6 rows over 2 heads/);
  });

  /** A GGUF v3 file with one string metadata entry and one 32-value F32 tensor. */
  function tinyGguf(architecture: string, tensorName: string): Uint8Array {
    const u32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); return b; };
    const u64 = (v: number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); return b; };
    const str = (s: string) => Buffer.concat([u64(Buffer.byteLength(s)), Buffer.from(s)]);
    const head = Buffer.concat([
      Buffer.from('GGUF'), u32(3), u64(1), u64(1),
      str('general.architecture'), u32(8), str(architecture),
      str(tensorName), u32(1), u64(32), u32(0), u64(0),
    ]);
    const out = new Uint8Array(Math.ceil(head.length / 32) * 32 + 128);
    out.set(head);
    return out;
  }

  it('rejects an architecture it cannot load and a tensor it cannot name', () => {
    expect(() => GgufHfReader.fromFile(GgufFile.fromBytes(tinyGguf('gpt2', 'output_norm.weight'), 'a.gguf'))).toThrow(
      /^a\.gguf: unsupported GGUF architecture "gpt2"; supported: llama, qwen2/,
    );
    expect(() => GgufHfReader.fromFile(GgufFile.fromBytes(tinyGguf('llama', 'blk.0.attn_qkv.weight'), 'b.gguf'))).toThrow(
      /^b\.gguf: tensor "blk.0.attn_qkv.weight" has no known Hugging Face name/,
    );
  });
});
