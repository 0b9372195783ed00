import { expect } from 'vitest';
import type { ChatMessage } from '../src/tokenizer/chat-template.js';
import type { Tokenizer } from '../src/tokenizer/tokenizer.js';

/** Text that stresses a byte-level BPE tokenizer: spacing, digits, scripts, emoji, code, specials. */
export const TRICKY_STRINGS: readonly string[] = [
  'Hello world',
  ' Hello world',
  '',
  ' ',
  '   leading and trailing   ',
  'tabs\tand\nnewlines\r\nmixed\n\n\n',
  'a  1',
  'x   123 456\t7',
  'Numbers 12345, 3.14159 and 1,000,000 (99%)',
  "I'm sure they'll say it's fine, don't you? We've SEEN IT'S",
  'Café naïve résumé façade Ångström',
  'e\u0301 combining and \u00a0nbsp\u2009thin space and zero\u200bwidth',
  '你好，世界！这是一个测试。',
  '日本語のテキストとカタカナ ー',
  '한국어 텍스트입니다',
  'Россия и Україна',
  'مرحبا بالعالم',
  'Emoji: 😀👍🏽🇺🇸 and ❤️',
  'Unicode numbers: ٣٤ ² ½ Ⅻ ０１２',
  'ＦＵＬＬＷＩＤＴＨ',
  '\ufeffbom \u3000ideographic \u0085nel \u2028line',
  'x \u0085 and a \ufeffb, x\u0085\u0085y',
  'def foo(x):\n    return x ** 2  # square\n',
  'for (let i = 0; i < 10; i++) { console.log(`${i}`); }',
  '<div class="a">&amp;</div>',
  'email@example.com https://huggingface.co/HuggingFaceTB?x=1&y=2',
  '...!!!???---___***',
  '<|im_start|>user\nhi<|im_end|>',
  '<|endoftext|>text<|im_end|><|im_start|>',
  'spaced <|im_start|> special <|im_end|> tokens',
  '<|im_start|<not special>',
];

export const CONVERSATIONS: readonly { messages: ChatMessage[]; add_generation_prompt: boolean }[] = [
  { messages: [{ role: 'user', content: 'What is 2 + 2?' }], add_generation_prompt: true },
  {
    messages: [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Write a Triton kernel for x + y.' },
      { role: 'assistant', content: '```python\n@triton.jit\ndef add(x_ptr, y_ptr):\n    pass\n```' },
      { role: 'user', content: 'Thanks! 日本語 😀' },
    ],
    add_generation_prompt: false,
  },
  { messages: [{ role: 'user', content: '  spaces  and\nnewlines  ' }], add_generation_prompt: false },
];

export interface TokenizerReference {
  strings: {
    ids: number[];
    ids_no_special: number[];
    digit_split_ids: number[];
    decoded: string;
    decoded_skip_special: string;
  }[];
  chats: { text: string; ids: number[] }[];
  bos_token: string;
  eos_token: string;
  vocab_size: number;
}

/**
 * Checks our tokenizer against transformers'. `digitSplit` says which reference ids encoding must
 * match: transformers' GGUF loader as is, or with the model's digit-splitting pre-tokenizer.
 */
export function expectSameAsReference(tokenizer: Tokenizer, reference: TokenizerReference, digitSplit: boolean): void {
  TRICKY_STRINGS.forEach((text, i) => {
    const want = reference.strings[i];
    const label = JSON.stringify(text);
    const ids = tokenizer.encode(text);
    expect(ids, label).toEqual(digitSplit ? want.digit_split_ids : want.ids);
    if (!digitSplit) expect(tokenizer.encode(text, { addSpecialTokens: false }), label).toEqual(want.ids_no_special);
    // Decoding is checked on transformers' ids, so it does not depend on the encoding check above.
    expect(tokenizer.decode(want.ids), label).toBe(want.decoded);
    expect(tokenizer.decode(want.ids, { skipSpecialTokens: true }), label).toBe(want.decoded_skip_special);
  });
  CONVERSATIONS.forEach((chat, i) => {
    const options = { addGenerationPrompt: chat.add_generation_prompt };
    expect(tokenizer.renderChat(chat.messages, options), `chat ${i}`).toBe(reference.chats[i].text);
    expect(tokenizer.encodeChat(chat.messages, options), `chat ${i}`).toEqual(reference.chats[i].ids);
  });
  expect(tokenizer.settings.bos_token).toBe(reference.bos_token);
  expect(tokenizer.settings.eos_token).toBe(reference.eos_token);
  expect(tokenizer.vocabSize).toBe(reference.vocab_size);
}

/** The strings on which the model's digit splitting and transformers' GGUF loader disagree. */
export function digitSplitDisagreements(reference: TokenizerReference): string[] {
  return TRICKY_STRINGS.filter((_, i) => JSON.stringify(reference.strings[i].ids) !== JSON.stringify(reference.strings[i].digit_split_ids));
}
