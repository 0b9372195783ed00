import { Template } from '@huggingface/jinja';

export interface ChatMessage {
  role: string;
  content: string;
}

export interface ChatTemplateOptions {
  /** Append the prompt that opens the assistant's turn (transformers' add_generation_prompt). */
  addGenerationPrompt?: boolean;
  /** Extra variables for templates that read them (e.g. tools, enable_thinking). */
  extraVariables?: Readonly<Record<string, unknown>>;
}

/** The special-token strings transformers hands every chat template. */
export interface ChatTemplateTokens {
  bos_token: string | null;
  eos_token: string | null;
  unk_token: string | null;
  pad_token: string | null;
}

/**
 * A compiled chat template, rendered like transformers' apply_chat_template(tokenize=False):
 * the template sees `messages`, `add_generation_prompt` and the special tokens.
 */
export class ChatTemplate {
  private readonly template: Template;

  constructor(
    readonly source: string,
    private readonly tokens: ChatTemplateTokens,
  ) {
    this.template = new Template(source);
  }

  render(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    return this.template.render({
      ...options.extraVariables,
      ...Object.fromEntries(Object.entries(this.tokens).filter(([, value]) => value !== null)),
      messages,
      add_generation_prompt: options.addGenerationPrompt ?? false,
    });
  }
}
