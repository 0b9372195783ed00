/** Where in a completion a grader looks: the last `<tag>…</tag>` block, or the whole text. */
export interface AnswerLocation {
  /** Grade the content of the last `<tag>…</tag>`; without it, the whole completion. */
  readonly tag?: string;
}

/** The content of the last `<tag>…</tag>` block (models often mention the tags before answering). */
export function lastTagged(text: string, tag: string): string | undefined {
  const close = text.lastIndexOf(`</${tag}>`);
  if (close < 0) return undefined;
  const open = text.lastIndexOf(`<${tag}>`, close);
  return open < 0 ? undefined : text.slice(open + tag.length + 2, close);
}

/** The text a grader should judge, or undefined when the required tag is missing. */
export function locateAnswer(completion: string, location: AnswerLocation | undefined): string | undefined {
  return location?.tag ? lastTagged(completion, location.tag)?.trim() : completion.trim();
}
