import { Ajv, type ValidateFunction } from 'ajv';

import { locateAnswer, missingAnswer, type AnswerLocation } from '../extract.js';
import type { GradeResult, Grader, GradingInput } from '../types.js';

export interface JsonOptions {
  /** A JSON schema the value must satisfy; without one, any valid JSON scores 1. */
  readonly schema?: object;
  readonly from?: AnswerLocation;
}

const FENCE = /^```(?:json)?\s*\n([\s\S]*?)\n?```$/;

export class JsonGrader implements Grader {
  private readonly validate?: ValidateFunction;
  private readonly from?: AnswerLocation;

  constructor(options: JsonOptions) {
    this.from = options.from;
    // Compiled once, at config load: a bad schema is a config error, not a 0 for every completion.
    if (options.schema) this.validate = new Ajv({ allErrors: true, strict: false }).compile(options.schema);
  }

  async grade(input: GradingInput): Promise<GradeResult> {
    const located = locateAnswer(input.completion, this.from);
    if (located === undefined) return { score: 0, reason: missingAnswer(this.from) };
    const text = FENCE.exec(located)?.[1] ?? located;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      return { score: 0, reason: `invalid JSON: ${(error as Error).message}` };
    }
    if (!this.validate) return { score: 1, reason: 'valid JSON' };
    if (this.validate(value)) return { score: 1, reason: 'valid JSON matching the schema' };
    const errors = (this.validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
    return { score: 0, reason: `JSON does not match the schema: ${errors}` };
  }
}
