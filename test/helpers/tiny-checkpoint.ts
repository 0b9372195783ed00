import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Gpu } from '../../src/gpu/gpu.js';
import { parseHfConfig, readHfConfig } from '../../src/io/hf-config.js';
import { repositoryRoot } from '../../src/io/repository-root.js';
import { openWeights } from '../../src/io/weight-source.js';
import { LlamaModel, type LoadOptions } from '../../src/model/llama.js';
import { writeSafetensors } from '../../src/io/safetensors-writer.js';
import { initialLlamaWeights } from '../../src/io/random-weights.js';
import { byteTokenizerFiles } from '../../src/tokenizer/byte-tokenizer.js';

/**
 * A Hugging Face checkpoint folder with a small random Llama and the byte-level tokenizer, for
 * tests that run the CLIs end to end (their output is gibberish, which is all a reward test needs).
 * `nanWeights` poisons one matrix, as a broken export would.
 */
export function writeRandomCheckpoint(seed = 1, { nanWeights = false } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'random-llama-'));
  const config = {
    architectures: ['LlamaForCausalLM'], hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2,
    num_attention_heads: 4, num_key_value_heads: 2, head_dim: 8, vocab_size: 259, rms_norm_eps: 1e-5,
    rope_theta: 10000, max_position_embeddings: 256, tie_word_embeddings: true, bos_token_id: 1, eos_token_id: 2,
  };
  const { tokenizerJson, tokenizerConfig } = byteTokenizerFiles();
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig));
  const weights = initialLlamaWeights(parseHfConfig(config, 'random'), seed, 0.3);
  // A broken export: one weight matrix full of NaN.
  if (nanWeights) (weights['model.layers.0.mlp.down_proj.weight'].data as Float32Array).fill(NaN);
  writeSafetensors(join(dir, 'model.safetensors'), weights);
  return dir;
}

/** The committed models/tiny (f32), loaded straight from its safetensors. */
export function tinyModel(g: Gpu, options: LoadOptions = {}): LlamaModel {
  const dir = join(repositoryRoot(), 'models', 'tiny');
  const reader = openWeights({ format: 'safetensors', path: join(dir, 'model.safetensors') });
  try {
    return new LlamaModel(g, readHfConfig(join(dir, 'config.json')), reader, options);
  } finally {
    reader.close();
  }
}
