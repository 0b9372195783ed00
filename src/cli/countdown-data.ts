// Writes the data of a Countdown experiment with scarce labelled data: held-out puzzles, nested training
// sets of N prompts, the same prompts with solutions for SFT, and the reward config.
//   node dist/src/cli/countdown-data.js --out-dir DIR [--numbers 2,3] [--max-number 10] [--operators +,-,*,/]
//        [--max-target 100] [--think | --answer-format sentence|equation] [--train-sizes 10,100] [--held-out 200] [--seed 0]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { COUNTDOWN_ANSWER_FORMATS, countdownDataFiles, COUNTDOWN_STYLE, type CountdownAnswerFormat } from '../tasks/countdown.js';
import { openingComment, parseCommand } from './options.js';

interface CountdownDataSettings {
  outDir: string;
  numbers: number[];
  maxNumber: number;
  operators: string[];
  maxTarget: number;
  think: boolean;
  answerFormat: CountdownAnswerFormat;
  trainSizes: number[];
  heldOut: number;
  seed: number;
}

const positive = { type: 'integer', minimum: 1 } as const;
const { values } = parseCommand<CountdownDataSettings>({
  usage: openingComment(import.meta.url),
  schema: {
    outDir: { type: 'string', minLength: 1 },
    numbers: { type: 'array', items: { type: 'integer', minimum: 2 }, minItems: 2, maxItems: 2 },
    maxNumber: positive,
    operators: { type: 'array', items: { type: 'string', enum: ['+', '-', '*', '/'] }, minItems: 1 },
    maxTarget: positive,
    think: { type: 'boolean' },
    answerFormat: { type: 'string', enum: [...COUNTDOWN_ANSWER_FORMATS] },
    trainSizes: { type: 'array', items: positive, minItems: 1 },
    heldOut: positive,
    seed: { type: 'integer', minimum: 0 },
  },
  defaults: { ...COUNTDOWN_STYLE, think: false, numbers: [...COUNTDOWN_STYLE.numbers], operators: [...COUNTDOWN_STYLE.operators], trainSizes: [10, 100], heldOut: 200, seed: 0 },
  help: {
    outDir: 'folder the files are written to',
    numbers: 'fewest and most numbers per puzzle',
    maxNumber: 'numbers are drawn from 1 to this',
    operators: 'operators of the expression each puzzle is built from',
    maxTarget: 'largest target kept',
    think: 'ask for reasoning in <think> tags before the <answer>',
    answerFormat: 'tag: the equation in <answer> tags; sentence: the reply ends with "The answer is <equation>."; equation: the reply ends with the equation and its result ("13 + 6 = 19")',
    trainSizes: 'sizes N of the nested training sets',
    heldOut: 'held-out puzzles (never in a training set)',
    seed: 'seed of the training puzzles (held-out ones use another)',
  },
  required: ['outDir'],
  check: (v) => {
    if (v.numbers[0] > v.numbers[1]) throw new Error(`--numbers: the fewest (${v.numbers[0]}) exceeds the most (${v.numbers[1]})`);
    if (v.think && v.answerFormat !== 'tag') throw new Error(`--think asks for <think> then <answer> tags; it does not go with --answer-format ${v.answerFormat}`);
  },
});
const files = countdownDataFiles({ numbers: [values.numbers[0], values.numbers[1]], maxNumber: values.maxNumber, operators: values.operators, maxTarget: values.maxTarget, think: values.think, answerFormat: values.answerFormat }, values);
mkdirSync(values.outDir, { recursive: true });
for (const [name, text] of Object.entries(files)) writeFileSync(join(values.outDir, name), text);
console.error(`wrote ${Object.keys(files).join(', ')} to ${values.outDir}`);
