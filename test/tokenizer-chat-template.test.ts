import { describe, expect, it } from 'vitest';
import { ChatTemplate } from '../src/tokenizer/chat-template.js';

const tokens = { bos_token: '<s>', eos_token: '</s>', unk_token: null, pad_token: null };

describe('ChatTemplate', () => {
  it('gives the template messages, add_generation_prompt and the special tokens', () => {
    const template = new ChatTemplate(
      "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}",
      tokens,
    );
    const messages = [{ role: 'user', content: 'hi' }];
    expect(template.render(messages)).toBe('<s>[user] hi</s>');
    expect(template.render(messages, { addGenerationPrompt: true })).toBe('<s>[user] hi</s>[assistant]');
  });

  it('passes extra variables, and leaves absent special tokens undefined', () => {
    const template = new ChatTemplate("{% if enable_thinking %}<think>{% endif %}{{ unk_token is defined }}", tokens);
    expect(template.render([], { extraVariables: { enable_thinking: true } })).toBe('<think>false');
  });

  it("surfaces a template's raise_exception as an error", () => {
    const template = new ChatTemplate("{% if messages[0].role != 'user' %}{{ raise_exception('first message must be from the user') }}{% endif %}", tokens);
    expect(() => template.render([{ role: 'assistant', content: 'x' }])).toThrow(/first message must be from the user/);
  });
});
