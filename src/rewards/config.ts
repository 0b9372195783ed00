import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

import { Ajv, type ValidateFunction } from 'ajv';

import { ComposedReward, type Gate } from './compose.js';
import { ExternalProcessGrader, type ExternalProcessOptions } from './graders/external-process.js';
import { JsonGrader } from './graders/json.js';
import { LlmJudgeGrader, type LlmJudgeOptions, type TextGenerator } from './graders/llm-judge.js';
import { NumericMatchGrader } from './graders/numeric.js';
import { ProgrammaticGrader, type ProgrammaticOptions } from './graders/programmatic.js';
import { RankGrader } from './graders/rank.js';
import { StringMatchGrader } from './graders/string-match.js';
import { TagFormatGrader } from './graders/tags.js';
import { TritonEvaluations, TritonGrader } from './graders/triton.js';
import { CountdownGrader } from './graders/countdown.js';
import { RUNTIME_DEVICES, TRITON_REWARDS, type RuntimeDevice, type TritonReward, type TritonRunner } from './triton-runner.js';
import type { Grader } from './types.js';

const location = { type: 'object', properties: { tag: { type: 'string', minLength: 1 }, after: { type: 'string', minLength: 1 }, before: { type: 'string', minLength: 1 } }, additionalProperties: false, maxProperties: 1 };
const expected = {
  oneOf: [
    { type: 'object', required: ['field'], properties: { field: { type: 'string' } }, additionalProperties: false },
    { type: 'object', required: ['value'], properties: { value: {} }, additionalProperties: false },
  ],
};

/** Options each grader type accepts (besides `type`), as JSON schema properties and required keys. */
const GRADER_OPTIONS: Record<string, { properties: object; required: string[] }> = {
  string: {
    properties: { mode: { enum: ['exact', 'contains', 'regex'] }, expected, caseSensitive: { type: 'boolean' }, normalizeWhitespace: { type: 'boolean' }, from: location },
    required: ['mode', 'expected'],
  },
  numeric: {
    properties: { expected, absoluteTolerance: { type: 'number', minimum: 0 }, relativeTolerance: { type: 'number', minimum: 0 }, from: location },
    required: ['expected'],
  },
  json: { properties: { schema: { type: 'object' }, from: location }, required: [] },
  tags: { properties: { tags: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 }, ordered: { type: 'boolean' } }, required: ['tags'] },
  rank: { properties: { expected, topN: { type: 'integer', minimum: 1 }, from: location }, required: ['expected', 'topN'] },
  programmatic: { properties: { module: { type: 'string' }, export: { type: 'string' } }, required: ['module'] },
  external: { properties: { command: { type: 'string' }, args: { type: 'array', items: { type: 'string' } }, cwd: { type: 'string' } }, required: ['command'] },
  llm_judge: {
    properties: {
      rubric: { type: 'string' },
      scale: { type: 'object', required: ['min', 'max'], properties: { min: { type: 'number' }, max: { type: 'number' } }, additionalProperties: false },
      template: { type: 'string' },
      generation: { type: 'object', required: ['maxNewTokens', 'temperature'], properties: { maxNewTokens: { type: 'integer', minimum: 1 }, temperature: { type: 'number', minimum: 0 } }, additionalProperties: false },
    },
    required: ['rubric'],
  },
  countdown: { properties: { from: location }, required: [] },
  triton: {
    properties: { reward: { enum: [...TRITON_REWARDS] }, problemField: { type: 'string' }, runtimeDevice: { enum: [...RUNTIME_DEVICES] } },
    required: ['reward'],
  },
};

const CONFIG_SCHEMA = {
  type: 'object',
  required: ['components'],
  additionalProperties: false,
  properties: {
    defaultTimeoutMs: { type: 'number', exclusiveMinimum: 0 },
    components: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['name', 'grader'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', minLength: 1 },
          weight: { type: 'number' },
          timeoutMs: { type: 'number', exclusiveMinimum: 0 },
          gate: { type: 'object', required: ['component'], properties: { component: { type: 'string' }, minScore: { type: 'number' } }, additionalProperties: false },
          grader: {
            type: 'object',
            required: ['type'],
            properties: { type: { enum: Object.keys(GRADER_OPTIONS) } },
            allOf: Object.entries(GRADER_OPTIONS).map(([type, { properties, required }]) => ({
              if: { properties: { type: { const: type } } },
              then: { properties: { type: {}, ...properties }, required, additionalProperties: false },
            })),
          },
        },
      },
    },
  },
};

export interface GraderConfig {
  readonly type: string;
  readonly [option: string]: unknown;
}

export interface ComponentConfig {
  readonly name: string;
  readonly grader: GraderConfig;
  /** Default 1. */
  readonly weight?: number;
  readonly gate?: Gate;
  readonly timeoutMs?: number;
}

/** The reward section of a run config: the JSON the CLI takes. */
export interface RewardConfig {
  /** Default 30 s per grader call. */
  readonly defaultTimeoutMs?: number;
  readonly components: readonly ComponentConfig[];
}

/** What some graders need from outside the config. */
export interface RewardContext {
  /** Relative paths in the config (programmatic modules, external commands' cwd) resolve against this. */
  readonly baseDir: string;
  /** For `llm_judge` graders: the local model. */
  readonly textGenerator?: TextGenerator;
  /** For `triton` graders: the runner client (the caller owns it and closes it). */
  readonly tritonRunner?: TritonRunner;
}

let validateConfig: ValidateFunction | undefined;

/** Checks a config against the schema; throws one error listing every problem. */
export function checkRewardConfig(config: unknown): asserts config is RewardConfig {
  validateConfig ??= new Ajv({ allErrors: true, strict: false }).compile(CONFIG_SCHEMA);
  if (!validateConfig(config)) {
    const problems = (validateConfig.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`);
    throw new Error(`invalid reward config:\n  ${[...new Set(problems)].join('\n  ')}`);
  }
}

export function buildReward(config: unknown, context: RewardContext): ComposedReward {
  checkRewardConfig(config);
  const evaluations = new TritonEvaluations(runtimeDevice(config));
  return new ComposedReward(
    config.components.map((component) => ({
      name: component.name,
      grader: buildGrader(component.grader, context, evaluations),
      weight: component.weight ?? 1,
      gate: component.gate,
      timeoutMs: component.timeoutMs ?? config.defaultTimeoutMs ?? 30_000,
    })),
  );
}

export function loadRewardConfig(path: string, context: Omit<RewardContext, 'baseDir'>): ComposedReward {
  return buildReward(JSON.parse(readFileSync(path, 'utf8')), { ...context, baseDir: dirname(resolve(path)) });
}

/** The Triton graders of a config share one evaluation per completion, so they must agree on where runtime is timed. */
function runtimeDevice(config: RewardConfig): RuntimeDevice | undefined {
  const devices = new Set(config.components.map((c) => (c.grader.type === 'triton' ? c.grader.runtimeDevice : undefined)).filter((d) => d !== undefined));
  if (devices.size > 1) throw new Error(`triton graders name different runtimeDevice values: ${[...devices].join(', ')}`);
  return [...devices][0] as RuntimeDevice | undefined;
}

// The schema has checked each type's options, so the casts below only restate it for the compiler.
function buildGrader(config: GraderConfig, context: RewardContext, evaluations: TritonEvaluations): Grader {
  const options = config as never;
  switch (config.type) {
    case 'string':
      return new StringMatchGrader(options);
    case 'numeric':
      return new NumericMatchGrader(options);
    case 'json':
      return new JsonGrader(options);
    case 'tags':
      return new TagFormatGrader(options);
    case 'rank':
      return new RankGrader(options);
    case 'programmatic':
      return new ProgrammaticGrader({ ...(config as unknown as Omit<ProgrammaticOptions, 'baseDir'>), baseDir: context.baseDir });
    case 'external': {
      const { command, args, cwd } = config as unknown as ExternalProcessOptions;
      return new ExternalProcessGrader({ command, args, cwd: resolve(context.baseDir, cwd ?? '.') });
    }
    case 'llm_judge':
      if (!context.textGenerator) throw new Error('an llm_judge grader needs a local model to ask (train.js --judge-model)');
      return new LlmJudgeGrader({ ...(config as unknown as Omit<LlmJudgeOptions, 'generator'>), generator: context.textGenerator });
    case 'countdown':
      return new CountdownGrader(options);
    case 'triton':
      if (!context.tritonRunner) throw new Error('a triton grader needs the Triton runner');
      return new TritonGrader({
        runner: context.tritonRunner,
        reward: config.reward as TritonReward,
        problemField: config.problemField as string | undefined,
        evaluations,
      });
    default:
      throw new Error(`unknown grader type '${config.type}'`);
  }
}
