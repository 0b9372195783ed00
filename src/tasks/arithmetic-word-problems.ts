import { pick, randomInt, type Random } from '../data/random.js';

/** Grade-school word problems with one integer answer, built from templates with seeded numbers. */
export interface WordProblemRow {
  readonly question: string;
  readonly target: number;
  /** The arithmetic that gives the answer, for reading the data set. */
  readonly solution: string;
}

export const WORD_PROBLEM_SYSTEM_PROMPT =
  'You are a helpful assistant. You first think about the reasoning process and then provide the user with the answer.';

export function wordProblemPrompt(row: WordProblemRow): string {
  return `${row.question}\nShow your reasoning in <think> </think> tags and give the final number in <answer> </answer> tags.`;
}

const NAMES = ['Ava', 'Ben', 'Chloe', 'Dev', 'Emma', 'Farid', 'Grace', 'Hugo', 'Iris', 'Jonas'];
const ITEMS = ['apple', 'marble', 'sticker', 'pencil', 'cookie', 'stamp', 'shell', 'card'];

type Template = (random: Random) => WordProblemRow;

const TEMPLATES: readonly Template[] = [
  (r) => {
    const [name, item, a, b] = [pick(r, NAMES), pick(r, ITEMS), randomInt(r, 2, 60), randomInt(r, 2, 40)];
    return { question: `${name} has ${a} ${item}s and finds ${b} more. How many ${item}s does ${name} have now?`, target: a + b, solution: `${a} + ${b}` };
  },
  (r) => {
    const [name, a, b] = [pick(r, NAMES), randomInt(r, 20, 200), randomInt(r, 1, 19)];
    return { question: `${name} had ${a} dollars and spent ${b} dollars on lunch. How many dollars are left?`, target: a - b, solution: `${a} - ${b}` };
  },
  (r) => {
    const [item, a, b] = [pick(r, ITEMS), randomInt(r, 2, 24), randomInt(r, 2, 15)];
    return { question: `A box holds ${a} ${item}s. How many ${item}s are in ${b} boxes?`, target: a * b, solution: `${a} * ${b}` };
  },
  (r) => {
    const [item, friends, each] = [pick(r, ITEMS), randomInt(r, 2, 12), randomInt(r, 2, 20)];
    return {
      question: `${friends * each} ${item}s are shared equally among ${friends} friends. How many ${item}s does each friend get?`,
      target: each,
      solution: `${friends * each} / ${friends}`,
    };
  },
  (r) => {
    const [name, item, packs, size] = [pick(r, NAMES), pick(r, ITEMS), randomInt(r, 2, 9), randomInt(r, 3, 12)];
    const given = randomInt(r, 1, packs * size - 1);
    return {
      question: `${name} buys ${packs} packs of ${size} ${item}s and gives ${given} of them away. How many ${item}s does ${name} keep?`,
      target: packs * size - given,
      solution: `${packs} * ${size} - ${given}`,
    };
  },
];

export function wordProblemRow(random: Random): WordProblemRow {
  return pick(random, TEMPLATES)(random);
}
