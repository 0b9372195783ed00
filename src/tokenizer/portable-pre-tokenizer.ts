// @huggingface/tokenizers (the JS port) departs from the Rust library on two pre-tokenizers:
//  - ByteLevel's built-in GPT-2 regex uses JS `\s`, which misses U+0085 and adds U+FEFF compared
//    with Rust's Unicode White_Space; its Split pre-tokenizer translates `\s` correctly, though.
//  - Digits matches only ASCII 0-9, where Rust uses char::is_numeric (categories Nd, Nl, No).
// So before handing a tokenizer.json to the JS library we restate both as Split regexes with the
// Rust meaning. The tokenizer.json itself (and what we build from GGUF) keeps the standard form.

/** The GPT-2 pre-tokenization regex of Rust's ByteLevel (use_regex: true). */
const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function split(regex: string): Json {
  return { type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false };
}

/** The pre_tokenizer config with ByteLevel's regex and Digits rewritten as equivalent Splits. */
export function portablePreTokenizer(config: unknown): unknown {
  if (!isObject(config)) return config;
  if (config.type === 'Sequence' && Array.isArray(config.pretokenizers)) {
    return { ...config, pretokenizers: config.pretokenizers.map(portablePreTokenizer) };
  }
  // With add_prefix_space the JS ByteLevel would add the space to every split piece; leave it be.
  if (config.type === 'ByteLevel' && config.use_regex !== false && config.add_prefix_space !== true) {
    return { type: 'Sequence', pretokenizers: [split(GPT2_PATTERN), { ...config, use_regex: false }] };
  }
  if (config.type === 'Digits') {
    return split(config.individual_digits === true ? '\\p{N}' : '\\p{N}+');
  }
  return config;
}
