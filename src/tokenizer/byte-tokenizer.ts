import { byteToUnicode } from './byte-level.js';
import type { TokenizerJson } from './gguf-tokenizer-json.js';

/** The special tokens of the project's own small models, with SmolLM2's ids and ChatML roles. */
export const BYTE_TOKENIZER_SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'] as const;

const CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/**
 * A byte-level BPE tokenizer with no merges: every UTF-8 byte is one token, after three special
 * tokens. It can spell any text with a 259-token vocabulary, which keeps the embedding and LM head
 * of a tiny model small; transformers and @huggingface/tokenizers both load it as it is.
 */
export function byteTokenizerFiles(): { tokenizerJson: TokenizerJson; tokenizerConfig: Record<string, unknown> } {
  const vocab: Record<string, number> = {};
  BYTE_TOKENIZER_SPECIALS.forEach((token, id) => (vocab[token] = id));
  byteToUnicode().forEach((symbol, byte) => (vocab[symbol] = BYTE_TOKENIZER_SPECIALS.length + byte));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const tokenizerJson: TokenizerJson = {
    version: '1.0',
    added_tokens: BYTE_TOKENIZER_SPECIALS.map((content, id) => ({
      id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
    })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: null,
    decoder: byteLevel,
    model: {
      type: 'BPE', vocab, merges: [], unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
      fuse_unk: false, byte_fallback: false, ignore_merges: false, dropout: null,
    },
  };
  const tokenizerConfig = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: '<|im_start|>',
    eos_token: '<|im_end|>',
    pad_token: '<|endoftext|>',
    unk_token: null,
    add_bos_token: false,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
    model_max_length: 512,
    chat_template: CHATML_TEMPLATE,
  };
  return { tokenizerJson, tokenizerConfig };
}
