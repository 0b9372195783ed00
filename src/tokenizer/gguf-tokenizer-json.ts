// Rebuilds a Hugging Face tokenizer.json (and the tokenizer_config.json fields that matter) from a
// GGUF file's tokenizer metadata, mirroring transformers' GGUF loader
// (integrations/gguf/gguf_tokenizer_mapping.py) for byte-level BPE ("gpt2") vocabularies — except
// where that loader departs from the model's own tokenizer (see PRE_TOKENIZERS).

import type { GgufFile } from '../io/gguf.js';
import { byteToUnicode, toByteLevelSpelling } from './byte-level.js';

/** llama.cpp's token types (llama_token_type). */
const TOKEN_TYPE_CONTROL = 3;
const TOKEN_TYPE_USER_DEFINED = 4;

export interface TokenizerJson {
  version: string;
  added_tokens: {
    id: number;
    content: string;
    single_word: boolean;
    lstrip: boolean;
    rstrip: boolean;
    normalized: boolean;
    special: boolean;
  }[];
  normalizer: null;
  pre_tokenizer: Record<string, unknown>;
  post_processor: Record<string, unknown> | null;
  decoder: Record<string, unknown>;
  model: {
    type: 'BPE';
    vocab: Record<string, number>;
    merges: [string, string][];
    unk_token: string | null;
    continuing_subword_prefix: string;
    end_of_word_suffix: string;
    fuse_unk: boolean;
    byte_fallback: boolean;
    ignore_merges: boolean;
    dropout: null;
  };
}

export interface TokenizerSettings {
  bos_token: string | null;
  eos_token: string | null;
  unk_token: string | null;
  pad_token: string | null;
  add_bos_token: boolean;
  add_eos_token: boolean;
  clean_up_tokenization_spaces: boolean;
  chat_template: string | null;
}

const BYTE_LEVEL = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };

/** SmolLM2's (and StarCoder's) tokenizer.json: each digit on its own, then GPT-2's byte-level regex. */
const DIGITS_THEN_GPT2 = {
  type: 'Sequence',
  pretokenizers: [{ type: 'Digits', individual_digits: true }, BYTE_LEVEL],
};

/**
 * Pre-tokenizers by `tokenizer.ggml.pre`, grouped as llama.cpp groups them (llama-vocab.cpp). Only
 * groups checked against a reference are listed; others (llama3, qwen2, ...) fail clearly.
 * transformers' loader has no entry for the "\p{N} then GPT-2" group (smollm, starcoder, ...), so
 * it falls back to plain GPT-2 splitting, which differs from these models' tokenizer.json and from
 * llama.cpp on digits after whitespace ("a  1"); we follow the model and llama.cpp.
 */
const PRE_TOKENIZERS: Readonly<Record<string, Record<string, unknown>>> = {
  default: BYTE_LEVEL,
  gpt2: BYTE_LEVEL,
  ...Object.fromEntries(
    ['smollm', 'starcoder', 'refact', 'command-r', 'codeshell', 'exaone', 'minerva'].map((name) => [name, DIGITS_THEN_GPT2]),
  ),
};

function stringArray(file: GgufFile, key: string): string[] {
  const value = file.get(key);
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    throw new Error(`${file.name}: metadata "${key}" must be an array of strings`);
  }
  return value as string[];
}

function optionalId(file: GgufFile, key: string, vocabSize: number): number | null {
  const value = file.get(key);
  if (value === undefined) return null;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= vocabSize) {
    throw new Error(`${file.name}: metadata "${key}" = ${String(value)} is not a token id`);
  }
  return value;
}

/** tokenizer.json plus settings for a GGUF file whose `tokenizer.ggml.model` is "gpt2". */
export function tokenizerJsonFromGguf(file: GgufFile): { tokenizerJson: TokenizerJson; settings: TokenizerSettings } {
  const model = file.get('tokenizer.ggml.model');
  if (model !== 'gpt2') {
    throw new Error(`${file.name}: tokenizer.ggml.model ${JSON.stringify(model ?? null)} is not supported (only "gpt2", byte-level BPE)`);
  }
  const pre = file.get('tokenizer.ggml.pre') ?? 'default';
  const preTokenizer = typeof pre === 'string' ? PRE_TOKENIZERS[pre] : undefined;
  if (!preTokenizer) {
    throw new Error(`${file.name}: tokenizer.ggml.pre ${JSON.stringify(pre)} is not supported; supported: ${Object.keys(PRE_TOKENIZERS).join(', ')}`);
  }

  const tokens = stringArray(file, 'tokenizer.ggml.tokens');
  const types = file.get('tokenizer.ggml.token_type');
  const tokenTypes = Array.isArray(types) ? (types as number[]) : [];
  const table = byteToUnicode();
  const alphabet = new Set(table);

  const vocab: Record<string, number> = Object.create(null) as Record<string, number>;
  tokens.forEach((token, id) => {
    vocab[toByteLevelSpelling(token, table, alphabet)] = id;
  });
  const merges = stringArray(file, 'tokenizer.ggml.merges').map((merge, i): [string, string] => {
    const parts = merge.split(' ');
    if (parts.length !== 2) throw new Error(`${file.name}: merge ${i} ${JSON.stringify(merge)} is not two tokens separated by a space`);
    return [parts[0], parts[1]];
  });

  // Control tokens become special added tokens, user-defined ones plain added tokens, so both are
  // matched whole in text. A "control" token spelled outside the byte alphabet is a llama.cpp
  // mislabel and is skipped, as transformers does.
  const addedTokens: TokenizerJson['added_tokens'] = [];
  tokens.forEach((content, id) => {
    const type = tokenTypes[id];
    const control = type === TOKEN_TYPE_CONTROL && [...content].every((ch) => alphabet.has(ch));
    if (control || type === TOKEN_TYPE_USER_DEFINED) {
      addedTokens.push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: control });
    }
  });

  const tokenOf = (key: string) => {
    const id = optionalId(file, key, tokens.length);
    return id === null ? null : tokens[id];
  };
  const addBos = file.get('tokenizer.ggml.add_bos_token') === true;
  const addEos = file.get('tokenizer.ggml.add_eos_token') === true;
  const bos = tokenOf('tokenizer.ggml.bos_token_id');
  const eos = tokenOf('tokenizer.ggml.eos_token_id');
  const chatTemplate = file.get('tokenizer.chat_template');

  const single: Record<string, unknown>[] = [];
  const specialTokens: Record<string, { id: string; ids: number[]; tokens: string[] }> = {};
  const addSpecial = (token: string | null) => {
    if (token === null) return;
    single.push({ SpecialToken: { id: token, type_id: 0 } });
    specialTokens[token] = { id: token, ids: [vocab[toByteLevelSpelling(token, table, alphabet)]], tokens: [token] };
  };
  if (addBos) addSpecial(bos);
  single.push({ Sequence: { id: 'A', type_id: 0 } });
  if (addEos) addSpecial(eos);

  return {
    tokenizerJson: {
      version: '1.0',
      added_tokens: addedTokens,
      normalizer: null,
      pre_tokenizer: preTokenizer,
      post_processor: addBos || addEos ? { type: 'TemplateProcessing', single, pair: single, special_tokens: specialTokens } : null,
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: {
        type: 'BPE',
        vocab,
        merges,
        unk_token: null,
        continuing_subword_prefix: '',
        end_of_word_suffix: '',
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: false,
        dropout: null,
      },
    },
    settings: {
      bos_token: bos,
      eos_token: eos,
      unk_token: tokenOf('tokenizer.ggml.unknown_token_id'),
      pad_token: tokenOf('tokenizer.ggml.padding_token_id'),
      add_bos_token: addBos,
      add_eos_token: addEos,
      clean_up_tokenization_spaces: false,
      chat_template: typeof chatTemplate === 'string' ? chatTemplate : null,
    },
  };
}
