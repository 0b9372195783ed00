import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { GgufFile } from '../io/gguf.js';
import type { TokenizerSource } from '../io/model-registry.js';
import { type ChatMessage, ChatTemplate, type ChatTemplateOptions } from './chat-template.js';
import { tokenizerJsonFromGguf, type TokenizerSettings } from './gguf-tokenizer-json.js';
import { portablePreTokenizer } from './portable-pre-tokenizer.js';

export interface EncodeOptions {
  /** Add the tokens the tokenizer's post-processor adds (e.g. BOS). Default true, as in transformers. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  skipSpecialTokens?: boolean;
}

function readJson(path: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    throw new Error(`${path}: cannot read tokenizer file (${(error as Error).message})`);
  }
}

/** tokenizer_config.json stores special tokens as strings or as AddedToken objects. */
function tokenString(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return null;
}

/**
 * A Hugging Face tokenizer (byte-level BPE and whatever else @huggingface/tokenizers implements)
 * with its special tokens and chat template: encode, decode, and apply_chat_template.
 */
export class Tokenizer {
  readonly chatTemplate: ChatTemplate | null;
  private readonly tokenizer: HfTokenizer;

  private constructor(
    readonly name: string,
    tokenizerJson: { pre_tokenizer?: unknown },
    readonly settings: TokenizerSettings,
    tokenizerConfig: Record<string, unknown>,
  ) {
    const portable = { ...tokenizerJson, pre_tokenizer: portablePreTokenizer(tokenizerJson.pre_tokenizer ?? null) };
    this.tokenizer = new HfTokenizer(portable, { ...tokenizerConfig, clean_up_tokenization_spaces: settings.clean_up_tokenization_spaces });
    this.chatTemplate = settings.chat_template
      ? new ChatTemplate(settings.chat_template, {
          bos_token: settings.bos_token,
          eos_token: settings.eos_token,
          unk_token: settings.unk_token,
          pad_token: settings.pad_token,
        })
      : null;
  }

  /** From a Hugging Face checkpoint directory: tokenizer.json, tokenizer_config.json, chat_template.jinja. */
  static fromDirectory(directory: string): Tokenizer {
    const tokenizerPath = join(directory, 'tokenizer.json');
    if (!existsSync(tokenizerPath)) throw new Error(`${directory}: no tokenizer.json`);
    const configPath = join(directory, 'tokenizer_config.json');
    const config = existsSync(configPath) ? readJson(configPath) : {};
    // Newer checkpoints keep the template in its own file, which then takes precedence.
    const templatePath = join(directory, 'chat_template.jinja');
    const template = existsSync(templatePath) ? readFileSync(templatePath, 'utf8') : config.chat_template;
    if (template !== undefined && template !== null && typeof template !== 'string') {
      throw new Error(`${configPath}: only a single string chat_template is supported`);
    }
    const settings: TokenizerSettings = {
      bos_token: tokenString(config.bos_token),
      eos_token: tokenString(config.eos_token),
      unk_token: tokenString(config.unk_token),
      pad_token: tokenString(config.pad_token),
      add_bos_token: config.add_bos_token === true,
      add_eos_token: config.add_eos_token === true,
      clean_up_tokenization_spaces: config.clean_up_tokenization_spaces === true,
      chat_template: template ?? null,
    };
    return new Tokenizer(directory, readJson(tokenizerPath), settings, config);
  }

  /** From the tokenizer a GGUF file describes in its metadata. */
  static fromGguf(file: GgufFile): Tokenizer {
    const { tokenizerJson, settings } = tokenizerJsonFromGguf(file);
    return new Tokenizer(file.name, tokenizerJson, settings, { ...settings });
  }

  /** The tokenizer a resolved model names (see resolveModel). */
  static fromSource(source: TokenizerSource): Tokenizer {
    if (source.format === 'hf-directory') return Tokenizer.fromDirectory(source.path);
    const file = GgufFile.open(source.path);
    try {
      return Tokenizer.fromGguf(file);
    } finally {
      file.close();
    }
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    // @huggingface/tokenizers throws on an empty list, where transformers returns "".
    if (ids.length === 0) return '';
    return this.tokenizer.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  /** The id of a token string (special tokens included), or undefined. */
  tokenId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  get vocabSize(): number {
    return this.tokenizer.get_vocab(true).size;
  }

  get bosTokenId(): number | undefined {
    return this.settings.bos_token === null ? undefined : this.tokenId(this.settings.bos_token);
  }

  get eosTokenId(): number | undefined {
    return this.settings.eos_token === null ? undefined : this.tokenId(this.settings.eos_token);
  }

  /** transformers' apply_chat_template(messages, tokenize=False). */
  renderChat(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    if (!this.chatTemplate) throw new Error(`${this.name}: the tokenizer has no chat template`);
    return this.chatTemplate.render(messages, options);
  }

  /**
   * transformers' apply_chat_template(messages, tokenize=True): the rendered text encoded without
   * adding special tokens, since the template writes any it wants itself.
   */
  encodeChat(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): number[] {
    return this.encode(this.renderChat(messages, options), { addSpecialTokens: false });
  }
}
