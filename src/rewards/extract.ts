/**
 * Where in a completion a grader looks: the last `<tag>…</tag>` block, what follows or precedes the
 * last occurrence of a phrase on its line, or (none given) the whole text.
 */
export interface AnswerLocation {
  /** Grade the content of the last `<tag>…</tag>`. */
  readonly tag?: string;
  /**
   * Grade what follows the last occurrence of this phrase (any case) up to the end of its line, without
   * a colon before it or a period after it: `{"after": "The answer is"}` reads "3 * 4" from "…The answer is: 3 * 4.".
   */
  readonly after?: string;
  /** Grade what precedes the last occurrence of this phrase, from the start of its line: `{"before": "="}` reads the left side of the last equation. */
  readonly before?: string;
}

/** The content of the last `<tag>…</tag>` block (models often mention the tags before answering). */
export function lastTagged(text: string, tag: string): string | undefined {
  const close = text.lastIndexOf(`</${tag}>`);
  if (close < 0) return undefined;
  const open = text.lastIndexOf(`<${tag}>`, close);
  return open < 0 ? undefined : text.slice(open + tag.length + 2, close);
}

/** The rest of the line after the last occurrence of `phrase` (case-insensitive), or undefined when it does not occur. */
export function afterLastPhrase(text: string, phrase: string): string | undefined {
  const at = text.toLowerCase().lastIndexOf(phrase.toLowerCase());
  if (at < 0) return undefined;
  const rest = text.slice(at + phrase.length).split('\n')[0];
  return rest.trim().replace(/^:\s*/, '').replace(/\.$/, '');
}

/** The line's text before the last occurrence of `phrase` (case-insensitive), or undefined when it does not occur. */
export function beforeLastPhrase(text: string, phrase: string): string | undefined {
  const at = text.toLowerCase().lastIndexOf(phrase.toLowerCase());
  if (at < 0) return undefined;
  return text.slice(text.lastIndexOf('\n', at) + 1, at);
}

/** The text a grader should judge, or undefined when the location is missing (see missingAnswer). */
export function locateAnswer(completion: string, location: AnswerLocation | undefined): string | undefined {
  if (location?.tag) return lastTagged(completion, location.tag)?.trim();
  if (location?.after) return afterLastPhrase(completion, location.after)?.trim();
  if (location?.before) return beforeLastPhrase(completion, location.before)?.trim();
  return completion.trim();
}

/** The grading reason when locateAnswer found nothing. */
export function missingAnswer(location: AnswerLocation | undefined): string {
  return location?.tag ? `no <${location.tag}> block` : `no "${location?.after ?? location?.before}" in the reply`;
}
